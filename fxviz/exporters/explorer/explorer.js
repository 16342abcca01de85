"use strict";
// fxviz explorer: modules that open and close in place (laid out by layout.js in a worker),
// pan/zoom, a minimap, search across every level, details, deep links, keyboard, themes and
// the current view saved as SVG or PNG. Every model-provided string is set with textContent
// or as an attribute value, never parsed as markup.
(function () {
  const DATA = JSON.parse(document.getElementById("fxviz-data").textContent);
  const NODES = DATA.nodes, CLUSTERS = DATA.clusters, EDGES = DATA.edges, NN = NODES.length;
  const ACROSS = DATA.rankdir === "LR";  // `--rankdir LR`: ranks run left to right
  const $ = (id) => document.getElementById(id);
  const viewport = $("viewport"), canvas = $("canvas"), details = $("details");
  const search = $("search"), count = $("count"), depthSelect = $("depth");
  const minimap = $("minimap"), lens = $("lens");
  const SVGNS = "http://www.w3.org/2000/svg";
  const hint = details.firstElementChild;
  const root = document.documentElement;

  // ---- the module tree ----------------------------------------------------------------
  const clusterOf = new Map(CLUSTERS.map((c, k) => [c.path, k]));
  const nodeOf = new Map(NODES.map((n, i) => [n.id, i]));
  const kids = CLUSTERS.map(() => []);
  const direct = CLUSTERS.map(() => 0);
  let topBoxes = 0;
  CLUSTERS.forEach((c, k) => { if (c.p >= 0) kids[c.p].push(k); });
  NODES.forEach((n) => { if (n.c >= 0) direct[n.c]++; else topBoxes++; });
  const depthOf = CLUSTERS.map(() => 0);
  CLUSTERS.forEach((c, k) => { depthOf[k] = c.p < 0 ? 1 : depthOf[c.p] + 1; });
  const deepest = Math.max(0, ...depthOf);
  const ancestors = (k) => { const found = []; while (k >= 0) { found.push(k); k = CLUSTERS[k].p; } return found; };

  const open = new Set();
  let shown = null;          // the last layout: {items, frames, edges, width, height}
  let place = new Map();     // "n<i>" / "c<k>" -> [x, y, w, h] in picture coordinates
  let view = { x: 0, y: 0, k: 1 };
  let selected = null;       // {kind: "node"|"cluster", index}
  let matches = [], current = -1;

  // ---- layout: in a worker where the page can start one, else here -------------------------
  const model = {
    nodes: NODES.map((n) => ({ c: n.c, lines: n.lines })),
    clusters: CLUSTERS.map((c) => ({ p: c.p, lines: c.lines, o: c.o })),
    edges: EDGES,
  };
  let worker = null, local = null, seq = 0;
  const waiting = new Map();
  function received(result) {
    const done = waiting.get(result.seq);
    waiting.delete(result.seq);
    if (result.seq === seq) draw(result);
    if (done) done(result);
  }
  function inline() {
    worker = null;
    local = local || self.fxvizLayout.prepare(model);
  }
  try {
    const source = $("fxviz-layout").textContent;
    worker = new Worker(URL.createObjectURL(new Blob([source], { type: "text/javascript" })));
    worker.onmessage = (event) => received(event.data);
    worker.onerror = (event) => {  // a page that may not start workers: lay out here
      event.preventDefault?.();
      inline();
      for (const [s, ] of waiting) relayout(s);
    };
    worker.postMessage({ model });
  } catch (error) {
    inline();
  }
  function relayout(s) {
    const started = performance.now();
    const result = self.fxvizLayout.layout(local, [...open], ACROSS);
    result.seq = s;
    result.ms = performance.now() - started;
    setTimeout(() => received(result), 0);
  }
  // Lay out what is open now; resolves once it is drawn.
  function layout() {
    const s = ++seq;
    const promise = new Promise((resolve) => waiting.set(s, resolve));
    if (worker) worker.postMessage({ expanded: [...open], seq: s, across: ACROSS });
    else relayout(s);
    return promise;
  }

  // ---- drawing ------------------------------------------------------------------------
  const svg = document.createElementNS(SVGNS, "svg");
  const frameLayer = document.createElementNS(SVGNS, "g");
  const edgeLayer = document.createElementNS(SVGNS, "g");
  const boxLayer = document.createElementNS(SVGNS, "g");
  frameLayer.setAttribute("class", "frames");
  edgeLayer.setAttribute("class", "edges");
  boxLayer.setAttribute("class", "boxes");
  const defs = document.createElementNS(SVGNS, "defs");
  const marker = document.createElementNS(SVGNS, "marker");
  for (const [k, v] of Object.entries({ id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5",
    markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" })) marker.setAttribute(k, v);
  const tip = document.createElementNS(SVGNS, "path");
  tip.setAttribute("d", "M0,1 L10,5 L0,9 z");
  tip.setAttribute("class", "tip");
  marker.appendChild(tip);
  defs.appendChild(marker);
  svg.append(defs, frameLayer, edgeLayer, boxLayer);
  canvas.appendChild(svg);
  const overview = document.createElement("canvas");
  overview.id = "overview";
  overview.hidden = true;
  viewport.insertBefore(overview, canvas.nextSibling);
  const DARK = DATA.dark || {};

  const cache = new Map();   // "n<i>" / "c<k>" / "f<k>" -> <g>
  function text(parent, x, y, line, cls) {
    const t = document.createElementNS(SVGNS, "text");
    t.setAttribute("x", x);
    t.setAttribute("y", y);
    if (cls) t.setAttribute("class", cls);
    t.textContent = line;
    parent.appendChild(t);
  }
  function rect(parent, w, h, attrs) {
    const r = document.createElementNS(SVGNS, "rect");
    r.setAttribute("width", w);
    r.setAttribute("height", h);
    for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) r.setAttribute(k, v);
    parent.appendChild(r);
    return r;
  }
  function box(key, w, h, make) {
    let g = cache.get(key);
    if (!g || g.dataset.w !== String(w) || g.dataset.h !== String(h)) {
      const fresh = document.createElementNS(SVGNS, "g");
      make(fresh);
      fresh.dataset.w = String(w);
      fresh.dataset.h = String(h);
      if (g) g.replaceWith(fresh);
      g = fresh;
      cache.set(key, g);
    }
    return g;
  }
  function nodeBox(i, w, h) {
    const n = NODES[i], s = n.style;
    return box("n" + i, w, h, (g) => {
      g.setAttribute("class", "node" + (n.status ? " " + n.status : ""));
      g.dataset.id = n.id;
      rect(g, w, h, { rx: s.round ? 5 : 0, fill: s.fill, stroke: s.line, "stroke-width": s.pen * (s.bold ? 1.5 : 1),
        "stroke-dasharray": s.dash ? "4 3" : null, class: "shape" });
      n.lines.forEach((line, j) => text(g, w / 2, 16 + j * 14, line, j ? "" : "first"));
    });
  }
  function clusterBox(k, w, h) {
    const c = CLUSTERS[k];
    return box("c" + k, w, h, (g) => {
      g.setAttribute("class", "node block" + (c.changes ? " changed-inside" : ""));
      g.dataset.path = c.path;
      rect(g, w, h, { x: 3, y: 3, rx: 5, fill: "#dbe8f6", stroke: "#5b7390", class: "stack" });
      rect(g, w - 3, h - 3, { rx: 5, fill: "#dbe8f6", stroke: c.changes ? "#d9480f" : "#5b7390",
        "stroke-width": c.changes ? 2.5 : 1.5, "stroke-dasharray": c.frozen ? "4 3" : null, class: "shape" });
      c.lines.forEach((line, j) => text(g, (w - 3) / 2, 16 + j * 14, line, j ? "" : "head"));
    });
  }
  function frame(k, w, h) {
    const c = CLUSTERS[k];
    return box("f" + k, w, h, (g) => {
      g.setAttribute("class", "cluster");
      g.dataset.path = c.path;
      rect(g, w, h, { rx: 7, fill: "none", stroke: c.frozen ? "#888888" : "#9aaabb",
        "stroke-dasharray": c.frozen ? "5 3" : null, class: "shape" });
      text(g, 8, 14, "− " + c.head, "head");
    });
  }

  function curve(points) {
    let d = `M${points[0]},${points[1]}`;
    for (let j = 2; j < points.length; j += 2) {
      const x0 = points[j - 2], y0 = points[j - 1], x1 = points[j], y1 = points[j + 1];
      const dy = y1 - y0, dx = x1 - x0;
      if (ACROSS && dx > 4) d += `C${x0 + dx / 2},${y0} ${x1 - dx / 2},${y1} ${x1},${y1}`;
      else if (!ACROSS && dy > 4) d += `C${x0},${y0 + dy / 2} ${x1},${y1 - dy / 2} ${x1},${y1}`;
      else d += `L${x1},${y1}`;
    }
    return d;
  }

  // A layout is drawn two ways. Near (labels readable), as SVG, with only what lies in or
  // near the window in the document, so that a page of 8,000 boxes holds a few hundred.
  // Far (labels smaller than ~4 px), as plain shapes on a canvas redrawn each frame.
  const NEAR = 0.35;
  let drawnAt = null;        // the picture rectangle the SVG now holds, and its mode
  let bounds = [];           // per edge: [minX, minY, maxX, maxY]
  function draw(result) {
    shown = result;
    place = new Map();
    for (const [k, x, y, w, h] of result.frames) place.set("f" + k, [x, y, w, h]);
    for (const [u, x, y, w, h] of result.items) place.set(u < NN ? "n" + u : "c" + (u - NN), [x, y, w, h]);
    bounds = result.edges.map(([, , p]) => {
      let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      for (let j = 0; j < p.length; j += 2) {
        x0 = Math.min(x0, p[j]); x1 = Math.max(x1, p[j]); y0 = Math.min(y0, p[j + 1]); y1 = Math.max(y1, p[j + 1]);
      }
      return [x0, y0, x1, y1];
    });
    for (const [key, g] of attached) if (key[0] === "e") { g.remove(); attached.delete(key); }
    wires = new Map();
    const W = Math.ceil(result.width) + 2, H = Math.ceil(result.height) + 2;
    svg.setAttribute("width", W);
    svg.setAttribute("height", H);
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    drawnAt = null;
    paint();
    drawMinimap();
    root.dataset.layout = String(result.seq);
    root.dataset.boxes = String(result.items.length);
    root.dataset.layoutMs = String(Math.round(result.ms || 0));
  }

  // What of the picture the window shows now, in picture coordinates.
  function windowRect(margin) {
    const vw = viewport.clientWidth, vh = viewport.clientHeight;
    const x0 = -view.x / view.k, y0 = -view.y / view.k, w = vw / view.k, h = vh / view.k;
    return [x0 - w * margin, y0 - h * margin, x0 + w * (1 + margin), y0 + h * (1 + margin)];
  }
  const meets = (r, x, y, w, h) => x <= r[2] && x + w >= r[0] && y <= r[3] && y + h >= r[1];

  function paint() {
    if (!shown) return;
    const far = view.k < NEAR;
    canvas.classList.toggle("far", far);
    overview.hidden = !far;
    if (far) {
      if (drawnAt) {
        frameLayer.replaceChildren(); boxLayer.replaceChildren(); edgeLayer.replaceChildren();
        cache.clear(); attached.clear(); drawnAt = null;
      }
      sketch();
      return;
    }
    const inner = windowRect(0);
    if (drawnAt && inner[0] >= drawnAt[0] && inner[1] >= drawnAt[1] && inner[2] <= drawnAt[2] && inner[3] <= drawnAt[3]) return;
    const r = windowRect(1);
    drawnAt = r;
    fill(r, frameLayer, boxLayer, edgeLayer);
    marks();
  }

  // The SVG elements of everything meeting rectangle `r` (all of it: null). In the page's
  // own layers only what changed moves: elements that left `r` go, those that entered come.
  const attached = new Map();  // key -> element now in the page's layers
  let wires = new Map();       // edge index -> its <path>, for the layout shown
  function fill(r, frames, boxes, lines) {
    const want = new Map();
    const at = (g, x, y) => {
      const t = `translate(${x.toFixed(1)},${y.toFixed(1)})`;
      if (g.getAttribute("transform") !== t) g.setAttribute("transform", t);
    };
    for (const [k, x, y, w, h] of shown.frames) {
      if (r && !meets(r, x, y, w, h)) continue;
      const g = frame(k, Math.round(w), Math.round(h));
      at(g, x, y);
      want.set("f" + k, [frames, g]);
    }
    for (const [u, x, y, w, h] of shown.items) {
      if (r && !meets(r, x, y, w, h)) continue;
      const key = u < NN ? "n" + u : "c" + (u - NN);
      const g = u < NN ? nodeBox(u, Math.round(w), Math.round(h)) : clusterBox(u - NN, Math.round(w), Math.round(h));
      at(g, x, y);
      want.set(key, [boxes, g]);
    }
    shown.edges.forEach(([, , points], j) => {
      const e = bounds[j];
      if (points.length < 4 || (r && !meets(r, e[0], e[1], e[2] - e[0], e[3] - e[1]))) return;
      let p = wires.get(j);
      if (!p) {
        p = document.createElementNS(SVGNS, "path");
        p.setAttribute("d", curve(points));
        p.setAttribute("marker-end", "url(#arrow)");
        wires.set(j, p);
      }
      want.set("e" + j, [lines, p]);
    });
    if (frames !== frameLayer) {  // a copy of all of it, for saving
      for (const [layer, g] of want.values()) layer.appendChild(g.cloneNode(true));
      return;
    }
    for (const [key, g] of attached) {
      if (want.has(key)) continue;
      g.remove();
      attached.delete(key);
      if (key[0] !== "e") cache.delete(key);
    }
    for (const [key, [layer, g]] of want) {
      if (attached.get(key) === g && g.parentNode === layer) continue;
      const old = attached.get(key);
      if (old && old !== g) old.remove();
      layer.appendChild(g);
      attached.set(key, g);
    }
  }

  // Far: every box as its fill, every frame as its outline, every wire as a line, drawn once
  // into a bitmap twice the window's size; panning within it only copies it.
  let sketched = null, marked = 0;       // {bitmap, rect, k, key}
  function sketch() {
    const vw = viewport.clientWidth, vh = viewport.clientHeight, ratio = window.devicePixelRatio || 1;
    if (overview.width !== Math.round(vw * ratio) || overview.height !== Math.round(vh * ratio)) {
      overview.width = Math.round(vw * ratio);
      overview.height = Math.round(vh * ratio);
      overview.style.width = vw + "px";
      overview.style.height = vh + "px";
    }
    const inner = windowRect(0), key = [shown.seq, root.dataset.theme, marked].join(" ");
    const s = sketched;
    if (!s || s.k !== view.k || s.key !== key || inner[0] < s.rect[0] || inner[1] < s.rect[1] || inner[2] > s.rect[2] || inner[3] > s.rect[3]) {
      sketched = sketchInto(windowRect(0.5), ratio, key);
    }
    const g = overview.getContext("2d");
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.clearRect(0, 0, overview.width, overview.height);
    const r = sketched.rect;
    g.drawImage(sketched.bitmap, Math.round((r[0] * view.k + view.x) * ratio), Math.round((r[1] * view.k + view.y) * ratio));
  }
  function sketchInto(r, ratio, key) {
    const bitmap = document.createElement("canvas");
    bitmap.width = Math.max(1, Math.ceil((r[2] - r[0]) * view.k * ratio));
    bitmap.height = Math.max(1, Math.ceil((r[3] - r[1]) * view.k * ratio));
    const g = bitmap.getContext("2d");
    g.setTransform(ratio * view.k, 0, 0, ratio * view.k, -r[0] * view.k * ratio, -r[1] * view.k * ratio);
    const dark = root.dataset.theme === "dark", px = 1 / view.k;
    g.lineWidth = px;
    g.strokeStyle = dark ? "#5a6272" : "#9aaabb";
    for (const [, x, y, w, h] of shown.frames) if (meets(r, x, y, w, h)) g.strokeRect(x, y, w, h);
    g.strokeStyle = dark ? "#7d8594" : "#777777";
    g.beginPath();
    shown.edges.forEach(([, , p], j) => {
      const e = bounds[j];
      if (p.length < 4 || !meets(r, e[0], e[1], e[2] - e[0], e[3] - e[1])) return;
      g.moveTo(p[0], p[1]);
      for (let i = 2; i < p.length; i += 2) g.lineTo(p[i], p[i + 1]);
    });
    g.stroke();
    const hits = new Set(matches.map((m) => (m.kind === "node" ? "n" : "c") + m.index));
    if (selected) hits.add((selected.kind === "node" ? "n" : "c") + selected.index);
    const outlined = [];
    for (const [u, x, y, w, h] of shown.items) {
      if (!meets(r, x, y, w, h)) continue;
      const fillColour = u < NN ? NODES[u].style.fill : "#dbe8f6";
      g.fillStyle = dark ? (DARK[fillColour] || fillColour) : fillColour;
      g.fillRect(x, y, w, h);
      if (hits.has(u < NN ? "n" + u : "c" + (u - NN))) outlined.push([x, y, w, h, "#d9480f", 4]);
      else if (u >= NN && CLUSTERS[u - NN].changes) outlined.push([x, y, w, h, "#d9480f", 2.5]);
    }
    for (const [x, y, w, h, colour, width] of outlined) {
      g.lineWidth = width * px;
      g.strokeStyle = colour;
      g.strokeRect(x, y, w, h);
    }
    return { bitmap, rect: r, k: view.k, key };
  }
  // What is at a point of the picture: a box, else the heading of a frame.
  function at(px, py) {
    for (const [u, x, y, w, h] of shown.items) {
      if (px >= x && px <= x + w && py >= y && py <= y + h) return u < NN ? { kind: "node", index: u } : { kind: "block", index: u - NN };
    }
    let best = null;
    for (const [k, x, y, w, h] of shown.frames) {
      if (px >= x && px <= x + w && py >= y && py <= y + 20) best = { kind: "frame", index: k };
    }
    return best;
  }

  // Where something is drawn now: a node inside a closed module is drawn as that module.
  function placed(kind, index) {
    if (kind === "cluster") return place.get("f" + index) || place.get("c" + index);
    return place.get("n" + index);
  }
  function elementOf(kind, index) {
    if (kind === "cluster") return cache.get("f" + index) || cache.get("c" + index);
    return cache.get("n" + index);
  }

  // ---- open and close -------------------------------------------------------------------
  // Open or close module k; what was on screen around it stays where it was.
  async function toggle(k, wanted) {
    const isOpen = open.has(k);
    const want = wanted === undefined ? !isOpen : wanted;
    if (want === isOpen) return;
    const before = placed("cluster", k);
    if (want) open.add(k); else open.delete(k);  // what was open inside stays so, for later
    await layout();
    anchor(before, placed("cluster", k));
  }
  // Keep the middle of a box's top edge at the same place on screen after a layout.
  function anchor(before, after) {
    if (!before || !after) return;
    view.x += (before[0] + before[2] / 2 - after[0] - after[2] / 2) * view.k;
    view.y += (before[1] - after[1]) * view.k;
    apply();
  }
  // Open every module around node i (or around module k, which keeps its own state).
  async function reveal(kind, index) {
    const around = kind === "node" ? (NODES[index].c >= 0 ? ancestors(NODES[index].c) : []) : ancestors(CLUSTERS[index].p);
    const closed = around.filter((k) => !open.has(k));
    if (!closed.length) return;
    for (const k of closed) open.add(k);
    await layout();
  }
  // The picture at `--depth depth`: the modules above that depth open, the rest closed.
  async function openTo(depth) {
    open.clear();
    CLUSTERS.forEach((c, k) => { if (depthOf[k] < depth) open.add(k); });
    await layout();
    start();
  }
  // Where the page opens: every level whose boxes still fit a reader's screen or two.
  function firstDepth() {
    let boxes = topBoxes + CLUSTERS.filter((c) => c.p < 0).length, depth = 0;
    for (let d = 1; d <= deepest; d++) {
      let more = boxes;
      CLUSTERS.forEach((c, k) => { if (depthOf[k] === d) more += direct[k] + kids[k].length - 1; });
      if (more > 160 && d > 1) break;
      boxes = more;
      depth = d;
      if (boxes > 160) break;
    }
    return depth;
  }

  // ---- pan and zoom ---------------------------------------------------------------------
  let painting = false;
  function apply() {
    canvas.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.k})`;
    drawLens();
    if (view.k >= NEAR || overview.hidden) paint();  // near, or just gone far: now
    else if (!painting) {  // the sketch: at most once a frame
      painting = true;
      requestAnimationFrame(() => { painting = false; paint(); });
    }
  }
  function size() { return shown ? { width: shown.width + 2, height: shown.height + 2 } : { width: 1, height: 1 }; }
  function fit() {
    const { width, height } = size();
    const vw = viewport.clientWidth, vh = viewport.clientHeight;
    const k = Math.min(vw / width, vh / height, 1.5) * 0.97;
    view = { k, x: (vw - width * k) / 2, y: Math.max(4, (vh - height * k) / 2) };
    apply();
  }
  // Whole if it is legible so, else its start (top, or left end) at a readable size.
  function start() {
    const { width, height } = size();
    const vw = viewport.clientWidth, vh = viewport.clientHeight;
    const whole = Math.min(vw / width, vh / height) * 0.97;
    if (whole >= 0.6) { fit(); return; }
    if (ACROSS) {  // ranks across: the left end, as tall as reads well, in the middle
      const k = Math.max(0.6, Math.min(1, (vh * 0.97) / height));
      view = { k, x: 4, y: Math.max(4, (vh - height * k) / 2) };
    } else {
      const k = Math.max(0.6, Math.min(1, (vw * 0.97) / width));
      view = { k, x: Math.max(4, (vw - width * k) / 2), y: 4 };
    }
    apply();
  }
  function zoomAt(factor, cx, cy) {
    const k = Math.min(8, Math.max(0.01, view.k * factor));
    const f = k / view.k;
    view = { k, x: cx - (cx - view.x) * f, y: cy - (cy - view.y) * f };
    apply();
  }
  viewport.addEventListener("wheel", (event) => {
    event.preventDefault();
    const r = viewport.getBoundingClientRect();
    const factor = Math.exp(-event.deltaY * (event.deltaMode === 1 ? 0.05 : 0.0015));
    zoomAt(factor, event.clientX - r.left, event.clientY - r.top);
  }, { passive: false });
  let drag = null, moved = false;
  viewport.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || event.target.closest("#minimap-box")) return;
    drag = { x: event.clientX, y: event.clientY, vx: view.x, vy: view.y };
    moved = false;
    canvas.style.willChange = "transform";  // moved as one layer while held, sharp again after
  });
  window.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
    if (!moved && Math.hypot(dx, dy) < 4) return;
    moved = true;
    viewport.classList.add("dragging");
    view.x = drag.vx + dx;
    view.y = drag.vy + dy;
    apply();
  });
  window.addEventListener("pointerup", () => {
    drag = null;
    viewport.classList.remove("dragging");
    canvas.style.willChange = "";
  });

  // Centre a placed rectangle, zoomed so that its label reads (~10 px), no further.
  function centre(at) {
    if (!at) return;
    const [x, y, w, h] = at;
    if (h * view.k < 30 && h < 400) view.k = Math.min(8, 36 / Math.max(h, 1));
    const vw = viewport.clientWidth, vh = viewport.clientHeight;
    view.x = vw / 2 - (x + w / 2) * view.k;
    view.y = vh / 2 - (y + Math.min(h, vh / view.k) / 2) * view.k;
    apply();
  }
  const mid = () => [viewport.clientWidth / 2, viewport.clientHeight / 2];
  $("zoom-in").addEventListener("click", () => zoomAt(1.25, ...mid()));
  $("zoom-out").addEventListener("click", () => zoomAt(0.8, ...mid()));
  $("fit").addEventListener("click", fit);
  window.addEventListener("resize", () => apply());

  // ---- minimap --------------------------------------------------------------------------
  let mapScale = 1;
  function drawMinimap() {
    const { width, height } = size();
    const room = 180;
    mapScale = Math.min(room / width, room / height);
    const cw = Math.max(20, Math.round(width * mapScale)), ch = Math.max(20, Math.round(height * mapScale));
    const ratio = window.devicePixelRatio || 1;
    minimap.width = cw * ratio;
    minimap.height = ch * ratio;
    minimap.style.width = cw + "px";
    minimap.style.height = ch + "px";
    const g = minimap.getContext("2d");
    g.setTransform(ratio * mapScale, 0, 0, ratio * mapScale, 0, 0);
    g.clearRect(0, 0, width, height);
    g.lineWidth = 1 / mapScale;
    g.strokeStyle = getComputedStyle(root).getPropertyValue("--muted") || "#888";
    for (const [, x, y, w, h] of shown.frames) g.strokeRect(x, y, w, h);
    for (const [u, x, y, w, h] of shown.items) {
      g.fillStyle = u < NN ? NODES[u].style.fill : (CLUSTERS[u - NN].changes ? "#fbd38d" : "#9fbde0");
      g.fillRect(x, y, w, Math.max(h, 2 / mapScale));
    }
    drawLens();
  }
  function drawLens() {
    if (!shown) return;
    const vw = viewport.clientWidth, vh = viewport.clientHeight;
    const x = (-view.x / view.k) * mapScale, y = (-view.y / view.k) * mapScale;
    lens.style.left = x + "px";
    lens.style.top = y + "px";
    lens.style.width = (vw / view.k) * mapScale + "px";
    lens.style.height = (vh / view.k) * mapScale + "px";
  }
  let mapDrag = false;
  function mapMove(event) {
    const r = minimap.getBoundingClientRect();
    const px = (event.clientX - r.left) / mapScale, py = (event.clientY - r.top) / mapScale;
    view.x = viewport.clientWidth / 2 - px * view.k;
    view.y = viewport.clientHeight / 2 - py * view.k;
    apply();
  }
  $("minimap-box").addEventListener("pointerdown", (event) => { mapDrag = true; mapMove(event); event.stopPropagation(); });
  window.addEventListener("pointermove", (event) => { if (mapDrag) mapMove(event); });
  window.addEventListener("pointerup", () => { mapDrag = false; });

  // ---- search ---------------------------------------------------------------------------
  const hay = NODES.map((d) => [d.id, d.target, d.path, d.class, d.title, d.kind].join("\n").toLowerCase());
  const clusterHay = CLUSTERS.map((c) => [c.path, c.class, c.head].join("\n").toLowerCase());
  function find(value) {
    const q = value.trim().toLowerCase();
    matches = [];
    current = -1;
    if (q) {
      // Named exactly (a module's path, a box's op or id) first, then a class or an owner,
      // then names that hold the text.
      const named = [], exact = [], partial = [];
      CLUSTERS.forEach((c, k) => {
        if (c.path.toLowerCase() === q) named.push({ kind: "cluster", index: k });
        else if ((c.class || "").toLowerCase() === q) exact.push({ kind: "cluster", index: k });
        else if (clusterHay[k].includes(q)) partial.push({ kind: "cluster", index: k });
      });
      NODES.forEach((d, i) => {
        if (!hay[i].includes(q)) return;
        const m = { kind: "node", index: i };
        if ((d.target || "").toLowerCase() === q || d.id.toLowerCase() === q) named.push(m);
        else if ([d.path, d.class].some((s) => (s || "").toLowerCase() === q)) exact.push(m);
        else partial.push(m);
      });
      matches = named.concat(exact, partial);
    }
    marks();
    updateCount();
  }
  function marks() {
    for (const g of boxLayer.querySelectorAll(".hit, .current, .selected")) g.classList.remove("hit", "current", "selected");
    for (const g of frameLayer.querySelectorAll(".hit, .current, .selected")) g.classList.remove("hit", "current", "selected");
    matches.forEach((m, j) => {
      const g = elementOf(m.kind, m.index);
      if (g) g.classList.add(j === current ? "current" : "hit");
    });
    // A match hidden in a closed module marks that module's box.
    for (const m of matches) {
      if (elementOf(m.kind, m.index)) continue;
      const c = m.kind === "node" ? NODES[m.index].c : CLUSTERS[m.index].p;
      for (const k of ancestors(c)) { const g = cache.get("c" + k); if (g && g.isConnected) { g.classList.add("hit"); break; } }
    }
    if (selected) { const g = elementOf(selected.kind, selected.index); if (g) g.classList.add("selected"); }
    marked++;
    if (shown && view.k < NEAR) sketch();
  }
  function updateCount() {
    if (!search.value.trim()) count.textContent = "";
    else if (matches.length) count.textContent = current >= 0 ? `${current + 1} of ${matches.length}` : `${matches.length} found`;
    else count.textContent = "no match";
  }
  async function step(delta) {
    if (!matches.length) return;
    current = (current + delta + matches.length) % matches.length;
    await go(matches[current]);
    updateCount();
  }
  // Show something wherever it is: open the modules around it, centre it, describe it.
  async function go(m) {
    await reveal(m.kind, m.index);
    selected = m;
    marks();
    centre(placed(m.kind, m.index));
    if (m.kind === "node") describeNode(m.index); else describeCluster(m.index);
    remember(m);
  }
  let typing = null;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => find(search.value), 100);
  });
  search.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    clearTimeout(typing);
    if (search.dataset.query !== search.value) { search.dataset.query = search.value; find(search.value); }
    step(event.shiftKey ? -1 : 1);
  });
  $("next").addEventListener("click", () => { if (!matches.length) find(search.value); step(1); });
  $("prev").addEventListener("click", () => { if (!matches.length) find(search.value); step(-1); });

  // ---- deep links -----------------------------------------------------------------------
  function lookup(text) {
    if (clusterOf.has(text)) return { kind: "cluster", index: clusterOf.get(text) };
    if (nodeOf.has(text)) return { kind: "node", index: nodeOf.get(text) };
    const i = NODES.findIndex((n) => n.target === text || (n.kind === "module" && n.path === text));
    return i >= 0 ? { kind: "node", index: i } : null;
  }
  function remember(m) {
    const name = m.kind === "cluster" ? CLUSTERS[m.index].path : (NODES[m.index].kind === "module" ? NODES[m.index].target : NODES[m.index].id);
    try { history.replaceState(null, "", "#" + encodeURIComponent(name)); } catch (error) { /* a sandboxed frame */ }
  }
  function linked() {
    let text = "";
    try { text = decodeURIComponent(location.hash.slice(1)); } catch (error) { return null; }
    return text ? lookup(text) : null;
  }
  window.addEventListener("hashchange", () => { const m = linked(); if (m) go(m); });

  // ---- keyboard -------------------------------------------------------------------------
  // j / k: the next / previous box on screen in the order the model ran; Enter opens or
  // closes the selected module; Backspace closes the module around the selection.
  function visibleOrder() {
    return shown.items.map(([u]) => (u < NN ? { kind: "node", index: u, o: u } : { kind: "cluster", index: u - NN, o: CLUSTERS[u - NN].o }))
      .sort((a, b) => a.o - b.o);
  }
  function walk(delta) {
    const order = visibleOrder();
    if (!order.length) return;
    let at = selected ? order.findIndex((m) => m.kind === selected.kind && m.index === selected.index) : -1;
    if (at >= 0) at = Math.min(order.length - 1, Math.max(0, at + delta));
    else if (!selected) at = delta > 0 ? 0 : order.length - 1;
    else {  // an open module's frame: the first box inside it, or the last before it
      const o = selected.kind === "node" ? selected.index : CLUSTERS[selected.index].o;
      at = delta > 0 ? order.findIndex((m) => m.o >= o) : order.findLastIndex((m) => m.o < o);
      if (at < 0) at = delta > 0 ? order.length - 1 : 0;
    }
    go(order[at]);
  }
  async function enter() {
    if (!selected) return;
    if (selected.kind === "cluster") { await toggle(selected.index); describeCluster(selected.index); }
    else if (NODES[selected.index].kind === "module") {
      const k = clusterOf.get(NODES[selected.index].target);
      if (k !== undefined) await toggle(k, true);
    }
    marks();
  }
  async function closeAround() {
    if (!selected) return;
    const k = selected.kind === "node" ? NODES[selected.index].c : (open.has(selected.index) ? selected.index : CLUSTERS[selected.index].p);
    if (k === undefined || k < 0) return;
    await toggle(k, false);
    selected = { kind: "cluster", index: k };
    marks();
    describeCluster(k);
  }
  document.addEventListener("keydown", (event) => {
    if (event.target === search || event.target.tagName === "SELECT") {
      if (event.key === "Escape") { search.value = ""; find(""); viewport.focus(); }
      return;
    }
    const [cx, cy] = mid(), by = 80;
    const keys = {
      "+": () => zoomAt(1.25, cx, cy), "=": () => zoomAt(1.25, cx, cy),
      "-": () => zoomAt(0.8, cx, cy), "_": () => zoomAt(0.8, cx, cy),
      "0": fit, "f": fit,
      "ArrowLeft": () => { view.x += by; apply(); },
      "ArrowRight": () => { view.x -= by; apply(); },
      "ArrowUp": () => { view.y += by; apply(); },
      "ArrowDown": () => { view.y -= by; apply(); },
      "/": () => search.focus(),
      "n": () => step(1), "N": () => step(-1),
      "j": () => walk(1), "k": () => walk(-1),
      "Enter": enter, "Backspace": closeAround,
      "Escape": () => { selected = null; matches = []; current = -1; marks(); details.replaceChildren(hint); },
    };
    const act = keys[event.key];
    if (act && !event.ctrlKey && !event.metaKey && !event.altKey) { event.preventDefault(); act(); }
  });

  // ---- details --------------------------------------------------------------------------
  function el(tag, value, cls) {
    const e = document.createElement(tag);
    if (value !== undefined && value !== null) e.textContent = String(value);
    if (cls) e.className = cls;
    return e;
  }

  function paramText(p) {
    const [trainable, frozen] = p;
    if (!trainable && !frozen) return "";
    const n = (x) => x.toLocaleString("en-US");
    if (!frozen) return `${n(trainable)}, all trainable`;
    if (!trainable) return `${n(frozen)}, all frozen`;
    return `${n(trainable + frozen)}: ${n(trainable)} trainable, ${n(frozen)} frozen`;
  }
  function fields(rows) {
    const dl = el("dl");
    for (const [name, value] of rows) {
      if (value === undefined || value === null || value === "" || (Array.isArray(value) && !value.length)) continue;
      dl.appendChild(el("dt", name));
      dl.appendChild(el("dd", value));
    }
    return dl;
  }
  function list(items, render) {
    const ul = el("ul");
    for (const item of items) { const li = el("li"); render(li, item); ul.appendChild(li); }
    return ul;
  }
  const valueText = (v) => (v.path ? v.path + ": " : "") + v.shape + (v.dtype ? " " + v.dtype : "");
  function moduleLink(path) {
    const a = el("span", path, "link");
    a.addEventListener("click", () => { const m = lookup(path); if (m) go(m); });
    return a;
  }
  function children(d, parts) {
    if (!d.children || !d.children.length) return;
    parts.push(el("h3", "children"));
    parts.push(list(d.children, (li, c) => { li.append(moduleLink(c[0]), el("span", `: ${c[1]} · ${c[2]} params`)); }));
  }
  function describeNode(i) {
    const d = NODES[i];
    const parts = [el("h2", d.title)];
    if (d.status) parts.push(el("span", d.status, "status " + d.status));
    if (d.kind === "module" && clusterOf.has(d.target)) {
      const k = clusterOf.get(d.target), b = el("button", "open");
      b.addEventListener("click", () => toggle(k, true));
      parts.push(b);
    }
    parts.push(fields([
      ["kind", d.kind],
      ["module", d.kind === "module" ? d.path : d.path || "(model)"],
      ["class", d.class + (d.repeat > 1 ? ` ×${d.repeat}` : "")],
      ["op", d.kind === "module" ? "" : d.target],
      ["hyper-parameters", d.hparams],
      ["arguments", d.arguments],
      ["shared", (d.shared || []).join("; ")],
      ["parameters", paramText(d.params)],
      ["buffers", d.buffers ? d.buffers.toLocaleString("en-US") + " elements" : ""],
      ["FLOPs", d.flops],
      ["memory", d.memory ? d.memory + " (outputs)" : ""],
      ["memory estimate", d.held || ""],
      ["source", d.source],
    ]));
    if (d.code) parts.push(el("code", d.code));
    if (d.inputs.length) {
      parts.push(el("h3", "inputs"));
      parts.push(list(d.inputs, (li, v) => { li.textContent = `${v.from}: ${v.shape || "–"}`; }));
    }
    if (d.outputs.length) {
      parts.push(el("h3", "outputs"));
      parts.push(list(d.outputs, (li, v) => { li.textContent = valueText(v); }));
    }
    children(d, parts);
    if (d.why) {
      parts.push(el("h3", "why this shape"));
      parts.push(list(d.why, (li, w) => { li.textContent = w; }));
    }
    details.replaceChildren(...parts);
  }
  function describeCluster(k) {
    const d = CLUSTERS[k];
    const parts = [el("h2", d.head)];
    const button = el("button", open.has(k) ? "close" : "open");
    button.addEventListener("click", async () => { await toggle(k); describeCluster(k); });
    parts.push(button);
    const changed = d.changes ? Object.entries(d.changes).map(([kind, n]) => `${n} ${kind}`).join(", ") : "";
    parts.push(fields([
      ["module", d.path],
      ["class", d.class + (d.repeat > 1 ? ` ×${d.repeat}` : "")],
      ["hyper-parameters", d.hparams],
      ["shared", (d.shared || []).join("; ")],
      ["parameters", paramText(d.params)],
      ["buffers", d.buffers ? d.buffers.toLocaleString("en-US") + " elements" : ""],
      ["FLOPs", d.flops],
      ["boxes inside", d.nodes],
      ["changes inside", changed],
      ["in", d.in.join(", ")],
      ["out", d.out.join(", ")],
    ]));
    children(d, parts);
    details.replaceChildren(...parts);
  }

  async function clicked(hit) {
    if (hit.kind === "frame" || hit.kind === "block") {  // an open module's heading closes it,
      const k = hit.index;                             // a closed module's box opens it
      selected = { kind: "cluster", index: k };
      await toggle(k, hit.kind === "block");
      marks();
      describeCluster(k);
    } else {
      selected = { kind: "node", index: hit.index };
      marks();
      describeNode(hit.index);
    }
    remember(selected);
  }
  canvas.addEventListener("click", (event) => {
    if (moved) return;  // the end of a drag, not a click
    const g = event.target.closest("g.node, g.cluster");
    if (!g) return;
    if (g.classList.contains("cluster")) {
      if (event.target.closest("text")) clicked({ kind: "frame", index: clusterOf.get(g.dataset.path) });
    } else if (g.classList.contains("block")) clicked({ kind: "block", index: clusterOf.get(g.dataset.path) });
    else clicked({ kind: "node", index: nodeOf.get(g.dataset.id) });
  });
  overview.addEventListener("click", (event) => {
    if (moved || !shown) return;
    const r = viewport.getBoundingClientRect();
    const hit = at((event.clientX - r.left - view.x) / view.k, (event.clientY - r.top - view.y) / view.k);
    if (hit) clicked(hit);
  });

  // ---- depth control, themes, saving ------------------------------------------------------
  for (let d = 1; d <= deepest; d++) depthSelect.appendChild(new Option(`open to depth ${d}`, String(d)));
  depthSelect.appendChild(new Option("open every level", "all"));
  depthSelect.insertBefore(new Option("open modules…", ""), depthSelect.firstChild);
  if (!CLUSTERS.length) $("depth-label").hidden = true;
  depthSelect.addEventListener("change", () => {
    const value = depthSelect.value;
    depthSelect.value = "";
    if (value) openTo(value === "all" ? Infinity : Number(value));
  });

  const dark = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  let chosen = null;
  const theme = () => {
    root.dataset.theme = chosen || (dark && dark.matches ? "dark" : "light");
    if (shown) drawMinimap();
  };
  if (dark) dark.addEventListener?.("change", theme);
  $("theme").addEventListener("click", () => { chosen = root.dataset.theme === "dark" ? "light" : "dark"; theme(); });
  theme();

  const fileName = (DATA.title || "model").replace(/[^\w.-]+/g, "_").slice(0, 80);
  // The picture as it is now (what is open, the light scheme), as a standalone SVG file.
  function standalone() {
    const copy = svg.cloneNode(false), layers = [frameLayer, edgeLayer, boxLayer].map((g) => g.cloneNode(false));
    copy.append(defs.cloneNode(true), ...layers);
    fill(null, layers[0], layers[2], layers[1]);
    copy.setAttribute("xmlns", SVGNS);
    for (const g of copy.querySelectorAll(".hit, .current, .selected")) g.classList.remove("hit", "current", "selected");
    const style = document.createElementNS(SVGNS, "style");
    style.textContent = "text{font:11px Helvetica,Arial,sans-serif;fill:#1d1f23;text-anchor:middle}" +
      "g.cluster text{text-anchor:start;font-size:10px;fill:#3b4a5c}text.head{font-weight:bold}" +
      "g.edges path{fill:none;stroke:#555555;stroke-width:1}.tip{fill:#555555}";
    copy.insertBefore(style, copy.firstChild);
    const back = document.createElementNS(SVGNS, "rect");
    back.setAttribute("width", "100%"); back.setAttribute("height", "100%"); back.setAttribute("fill", "white");
    copy.insertBefore(back, style.nextSibling);
    return new XMLSerializer().serializeToString(copy);
  }
  function download(blob, name) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }
  $("save-svg").addEventListener("click", () => download(new Blob([standalone()], { type: "image/svg+xml" }), fileName + ".svg"));
  $("save-png").addEventListener("click", () => {
    const { width, height } = size();
    const scale = Math.min(2, Math.sqrt(120e6 / (width * height)), 16000 / Math.max(width, height));
    const image = new Image();
    const url = URL.createObjectURL(new Blob([standalone()], { type: "image/svg+xml" }));
    image.onload = () => {
      const c = document.createElement("canvas");
      c.width = Math.max(1, Math.floor(width * scale));
      c.height = Math.max(1, Math.floor(height * scale));
      const g = c.getContext("2d");
      g.scale(scale, scale);
      g.drawImage(image, 0, 0);
      URL.revokeObjectURL(url);
      c.toBlob((blob) => { if (blob) download(blob, fileName + ".png"); }, "image/png");
    };
    image.src = url;
  });
  $("print").addEventListener("click", () => { fit(); window.print(); });

  // ---- a diff's report ------------------------------------------------------------------
  const lines = $("report-lines");
  if (lines) {
    for (const line of DATA.report) {
      const li = el("li", line);
      const path = (line.match(/[A-Za-z_][\w.]*\.[\w.]+|\b[a-z_]\w*\d\b/) || [])[0];
      if (path) li.addEventListener("click", () => {
        search.value = path;
        find(path);
        if (matches.length) { current = 0; go(matches[0]).then(updateCount); }
      });
      lines.appendChild(li);
    }
  }

  // For tests and benchmarks: the page's own actions, each resolving once drawn.
  window.fxvizExplorer = {
    toggle: (path, wanted) => toggle(clusterOf.get(path), wanted),
    find: async (q) => { search.value = q; find(q); if (matches.length) { current = 0; await go(matches[0]); updateCount(); } return matches.length; },
    go: (name) => { const m = lookup(name); return m ? go(m) : Promise.resolve(); },
    openTo: (depth) => openTo(depth),
    reset: () => openTo(firstDepth() + 1),
    visible: () => (shown ? shown.items.length : 0),
    worker: () => worker !== null,
    zoom: (k) => zoomAt(k / view.k, ...mid()),
  };

  (async () => {
    const first = firstDepth();
    CLUSTERS.forEach((c, k) => { if (depthOf[k] <= first) open.add(k); });
    const m = linked();
    await layout();
    start();
    if (m) await go(m);
    depthSelect.value = "";
    root.dataset.ready = "1";
  })();
})();
