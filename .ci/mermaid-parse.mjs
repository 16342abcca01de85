// Parse Mermaid files with Mermaid's own parser (the `mermaid` npm package, in a jsdom window):
// `node .ci/mermaid-parse.mjs a.mmd b.mmd` prints "ok FILE TYPE" or "FAIL FILE reason" per
// file and exits 1 if any failed. .ci/run installs mermaid and jsdom into .ci/node_modules.
import { JSDOM } from "jsdom";
import fs from "fs";

const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.DOMParser = dom.window.DOMParser;
globalThis.Element = dom.window.Element;
const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });
let failed = 0;
for (const file of process.argv.slice(2)) {
  const text = fs.readFileSync(file, "utf8");
  try {
    const result = await mermaid.parse(text);
    console.log("ok", file, result.diagramType);
  } catch (error) {
    failed++;
    console.log("FAIL", file, String(error.message || error).slice(0, 500));
  }
}
process.exit(failed ? 1 : 0);
