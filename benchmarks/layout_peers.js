// The explorer's layout against elkjs's, on the same boxes: what choosing layout.js rests on.
//
//   npm install --prefix /tmp/elk elkjs@0.9
//   python benchmarks/html_explorer.py --only llama-86-all-ops --keep /tmp/pages
//   NODE_PATH=/tmp/elk/node_modules node benchmarks/layout_peers.js /tmp/pages/llama-86-all-ops.html 2
//
// The last argument is the depth the page is opened to (`all`: every module open). Both lay
// out the same visible boxes with the same sizes: fxviz's layered layout of each open module
// (layout.js), and ELK's layered algorithm over the whole compound graph
// (hierarchyHandling INCLUDE_CHILDREN), as a page would have to run on each open or close.
const fs = require("fs");
const html = fs.readFileSync(process.argv[2], "utf8");
const depth = process.argv[3] === "all" ? Infinity : Number(process.argv[3]);
const data = JSON.parse(html.match(/id="fxviz-data">(.*?)<\/script>/s)[1]);
global.self = {};
eval(fs.readFileSync(require("path").join(__dirname, "..", "fxviz", "exporters", "explorer", "layout.js"), "utf8"));
const L = self.fxvizLayout;
delete global.self;
const ELK = require("elkjs");
const model = L.prepare({ nodes: data.nodes.map(n => ({ c: n.c, lines: n.lines })), clusters: data.clusters.map(c => ({ p: c.p, lines: c.lines, o: c.o })), edges: data.edges });
const dep = data.clusters.map(() => 0);
data.clusters.forEach((c, k) => { dep[k] = c.p < 0 ? 1 : dep[c.p] + 1; });
const open = data.clusters.map((c, k) => k).filter(k => dep[k] < depth);
let t = Date.now();
const r = L.layout(model, open);
const ours = Date.now() - t;
// Same visible units for ELK: a compound graph.
const isOpen = new Set(open);
const boxOf = data.clusters.map(() => -1);
data.clusters.forEach((c, k) => { const a = c.p < 0 ? -1 : boxOf[c.p]; boxOf[k] = a >= 0 ? a : (isOpen.has(k) ? -1 : k); });
const nn = data.nodes.length;
const unit = (i) => { const c = data.nodes[i].c; return c < 0 || boxOf[c] < 0 ? "n" + i : "c" + boxOf[c]; };
const elkNodes = new Map(); const rootG = { id: "root", layoutOptions: { "elk.algorithm": "layered", "elk.direction": "DOWN", "elk.hierarchyHandling": "INCLUDE_CHILDREN" }, children: [], edges: [] };
const frameOf = (k) => { if (k < 0) return rootG; const id = "f" + k; if (!elkNodes.has(id)) { const g = { id, children: [], edges: [] }; elkNodes.set(id, g); frameOf(data.clusters[k].p).children.push(g); } return elkNodes.get(id); };
for (const [u, x, y, w, h] of r.items) {
  const id = u < nn ? "n" + u : "c" + (u - nn);
  const k = u < nn ? data.nodes[u].c : data.clusters[u - nn].p;
  frameOf(k).children.push({ id, width: w, height: h });
}
const seen = new Set();
for (const [a, b] of data.edges) { const ua = unit(a), ub = unit(b); if (ua === ub || seen.has(ua + ub)) continue; seen.add(ua + ub); rootG.edges.push({ id: "e" + seen.size, sources: [ua], targets: [ub] }); }
const elk = new ELK();
t = Date.now();
elk.layout(rootG).then(() => { console.log(`${process.argv[2].split("/").pop()} depth ${process.argv[3]}: ${r.items.length} boxes, ${r.frames.length} frames; layout.js ${ours} ms, elkjs ${Date.now() - t} ms`); }).catch(e => console.log("elk failed", String(e).slice(0, 200)));
