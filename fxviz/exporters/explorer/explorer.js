"use strict";
// fxviz explorer: pan/zoom, search, details and collapsible modules over Graphviz's SVG.
// Every model-provided string is set with textContent, never parsed as markup.
(function () {
  const DATA = JSON.parse(document.getElementById("fxviz-data").textContent);
  const $ = (id) => document.getElementById(id);
  const viewport = $("viewport"), canvas = $("canvas"), details = $("details");
  const search = $("search"), count = $("count"), depth = $("depth");
  const SVGNS = "http://www.w3.org/2000/svg";
  const hint = details.firstElementChild;

  let level = null;          // the shown level's data
  let svg = null;            // its <svg>
  let nodeEls = new Map();   // node id -> <g class="node">
  let clusterEls = new Map(); // module path -> <g class="cluster">
  let edges = [];            // [tail id, head id, <g class="edge">]
  const collapsed = new Set();
  let view = { x: 0, y: 0, k: 1 };
  let matches = [], current = -1, other = -1;

  // ---- levels -------------------------------------------------------------------------
  // The depth control: every level drawn, and those left out (disabled), shallowest first.
  const depthOf = (name) => Number((name.match(/\d+/) || [Infinity])[0]);
  const entries = DATA.levels.map((lv, i) => [lv.name, String(i)])
    .concat(DATA.left_out.map((name) => [name, null]))
    .sort((a, b) => depthOf(a[0]) - depthOf(b[0]));
  for (const [name, value] of entries) {
    const option = document.createElement("option");
    if (value === null) {
      option.disabled = true;
      option.textContent = `${name}: left out, Graphviz took too long`;
    } else {
      option.value = value;
      option.textContent = name;
    }
    depth.appendChild(option);
  }
  if (DATA.levels.length + DATA.left_out.length < 2) $("depth-label").hidden = true;
  depth.addEventListener("change", () => show(Number(depth.value), true));

  function show(index, keepSearch) {
    const template = document.querySelector(`template[data-level="${index}"]`);
    canvas.replaceChildren(template.content.cloneNode(true));
    svg = canvas.querySelector("svg");
    level = DATA.levels[index];
    depth.value = String(index);
    collapsed.clear();
    index_();
    start();
    details.replaceChildren(hint);
    if (keepSearch && search.value) find(search.value, false);
    else clearMatches();
  }

  function titleOf(g) {
    const t = g.querySelector(":scope > title");
    return t ? t.textContent : "";
  }

  function index_() {
    nodeEls = new Map();
    clusterEls = new Map();
    edges = [];
    for (const g of svg.querySelectorAll("g.node")) {
      const id = titleOf(g);
      if (id in level.nodes) {
        nodeEls.set(id, g);
        g.dataset.id = id;
      }
    }
    for (const g of svg.querySelectorAll("g.cluster")) {
      const path = titleOf(g).replace(/^cluster_/, "");
      if (path in level.clusters) {
        clusterEls.set(path, g);
        g.dataset.path = path;
      }
    }
    for (const g of svg.querySelectorAll("g.edge")) {
      const pair = splitEdge(titleOf(g));
      if (pair) edges.push([pair[0], pair[1], g]);
    }
  }

  // An edge's title is `tail->head`; ids may themselves hold "->", so try every split.
  function splitEdge(text) {
    let at = text.indexOf("->");
    while (at >= 0) {
      const tail = text.slice(0, at), head = text.slice(at + 2);
      if (tail in level.nodes && head in level.nodes) return [tail, head];
      at = text.indexOf("->", at + 1);
    }
    return null;
  }

  // ---- pan and zoom -------------------------------------------------------------------
  function apply() {
    canvas.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.k})`;
  }

  function size() {
    const box = svg.viewBox.baseVal;
    const width = svg.width.baseVal.value || box.width;
    const height = svg.height.baseVal.value || box.height;
    return { width, height };
  }

  // The whole picture in the window.
  function fit() {
    const { width, height } = size();
    const vw = viewport.clientWidth, vh = viewport.clientHeight;
    const k = Math.min(vw / width, vh / height, 1.5) * 0.97;
    view = { k, x: (vw - width * k) / 2, y: Math.max(4, (vh - height * k) / 2) };
    apply();
  }

  // Where a picture opens: whole if it is legible so, else its top at a readable size
  // (a deep network is a tall picture; fitting it whole would shrink every label to a dot).
  function start() {
    const { width, height } = size();
    const vw = viewport.clientWidth, vh = viewport.clientHeight;
    const whole = Math.min(vw / width, vh / height) * 0.97;
    if (whole >= 0.6) { fit(); return; }
    const k = Math.min(1, (vw * 0.97) / width);
    view = { k, x: Math.max(4, (vw - width * k) / 2), y: 4 };
    apply();
  }

  function zoomAt(factor, cx, cy) {
    const k = Math.min(8, Math.max(0.02, view.k * factor));
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
    if (event.button !== 0) return;
    drag = { x: event.clientX, y: event.clientY, vx: view.x, vy: view.y };
    moved = false;
  });
  window.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
    if (!moved && Math.hypot(dx, dy) < 4) return;
    if (!moved) viewport.setPointerCapture?.(event.pointerId);
    moved = true;
    viewport.classList.add("dragging");
    view.x = drag.vx + dx;
    view.y = drag.vy + dy;
    apply();
  });
  window.addEventListener("pointerup", () => {
    drag = null;
    viewport.classList.remove("dragging");
  });

  function centre(g) {
    const vr = viewport.getBoundingClientRect();
    let r = g.getBoundingClientRect();
    // Readable: a box at least ~36 px tall on screen (its label at ~10 px), no further zoom.
    if (r.height > 0 && r.height < 36) {
      zoomAt(36 / r.height, r.left + r.width / 2 - vr.left, r.top + r.height / 2 - vr.top);
      r = g.getBoundingClientRect();
    }
    view.x += vr.left + vr.width / 2 - (r.left + r.width / 2);
    view.y += vr.top + vr.height / 2 - (r.top + r.height / 2);
    apply();
  }

  $("zoom-in").addEventListener("click", () => zoomAt(1.25, viewport.clientWidth / 2, viewport.clientHeight / 2));
  $("zoom-out").addEventListener("click", () => zoomAt(0.8, viewport.clientWidth / 2, viewport.clientHeight / 2));
  $("fit").addEventListener("click", fit);
  window.addEventListener("resize", () => apply());

  document.addEventListener("keydown", (event) => {
    if (event.target === search || event.target.tagName === "SELECT") {
      if (event.key === "Escape") { search.value = ""; clearMatches(); viewport.focus(); }
      return;
    }
    const cx = viewport.clientWidth / 2, cy = viewport.clientHeight / 2, step = 80;
    const keys = {
      "+": () => zoomAt(1.25, cx, cy), "=": () => zoomAt(1.25, cx, cy),
      "-": () => zoomAt(0.8, cx, cy), "_": () => zoomAt(0.8, cx, cy),
      "0": fit, "f": fit,
      "ArrowLeft": () => { view.x += step; apply(); },
      "ArrowRight": () => { view.x -= step; apply(); },
      "ArrowUp": () => { view.y += step; apply(); },
      "ArrowDown": () => { view.y -= step; apply(); },
      "/": () => search.focus(),
      "n": () => step_(1), "N": () => step_(-1),
      "Escape": () => { select(null); clearMatches(); },
    };
    const act = keys[event.key];
    if (act && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      act();
    }
  });

  // ---- search -------------------------------------------------------------------------
  function haystack(d) {
    return [d.target, d.path, d.class, d.title, d.kind].join("\n").toLowerCase();
  }

  // Whether another level holds what this one does not: the first such level's index.
  function elsewhere(q) {
    return DATA.levels.findIndex((lv) => lv !== level && (
      Object.values(lv.nodes).some((d) => haystack(d).includes(q)) ||
      Object.keys(lv.clusters).some((p) => p.toLowerCase().includes(q))));
  }

  function find(text, jump) {
    clearMatches();
    const q = text.trim().toLowerCase();
    if (!q) return;
    const exact = [], partial = [];
    for (const [id, d] of Object.entries(level.nodes)) {
      if (!nodeEls.has(id)) continue;
      const hay = haystack(d);
      if (!hay.includes(q)) continue;
      const whole = [d.target, d.path, d.class].some((s) => (s || "").toLowerCase() === q);
      (whole ? exact : partial).push({ kind: "node", key: id });
    }
    for (const [path, d] of Object.entries(level.clusters)) {
      if (!clusterEls.has(path)) continue;
      if (path.toLowerCase() === q || (d.class || "").toLowerCase() === q) exact.push({ kind: "cluster", key: path });
      else if (path.toLowerCase().includes(q)) partial.push({ kind: "cluster", key: path });
    }
    matches = exact.concat(partial);
    for (const m of matches) element(m).classList.add("hit");
    current = -1;
    other = matches.length ? -1 : elsewhere(q);
    if (jump && matches.length) step_(1);
    else updateCount();
  }

  function element(m) {
    return m.kind === "node" ? nodeEls.get(m.key) : clusterEls.get(m.key);
  }

  function clearMatches() {
    for (const g of svg.querySelectorAll(".hit, .current")) g.classList.remove("hit", "current");
    matches = [];
    current = -1;
    other = -1;
    updateCount();
  }

  function updateCount() {
    if (!search.value.trim()) count.textContent = "";
    else if (matches.length) count.textContent = `${current + 1} of ${matches.length}`;
    else if (other >= 0) count.textContent = `none here; Enter: ${DATA.levels[other].name}`;
    else count.textContent = "no match";
  }

  function step_(delta) {
    if (!matches.length && other >= 0) {  // found only at another depth: go there
      show(other, true);
      if (!matches.length) return;
    }
    if (!matches.length) return;
    if (current >= 0) element(matches[current]).classList.remove("current");
    current = (current + delta + matches.length) % matches.length;
    const m = matches[current];
    reveal(m.kind === "node" ? level.nodes[m.key].scope : m.key, m.kind === "cluster");
    const g = element(m);
    g.classList.add("current");
    centre(g);
    if (m.kind === "node") describeNode(m.key); else describeCluster(m.key);
    updateCount();
  }

  let typing = null;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => find(search.value, false), 120);
  });
  search.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    clearTimeout(typing);
    if (!matches.length || search.dataset.query !== search.value) {
      search.dataset.query = search.value;
      find(search.value, false);
    }
    step_(event.shiftKey ? -1 : 1);
  });
  $("next").addEventListener("click", () => { if (!matches.length) find(search.value, false); step_(1); });
  $("prev").addEventListener("click", () => { if (!matches.length) find(search.value, false); step_(-1); });

  // ---- collapsing ---------------------------------------------------------------------
  const inside = (scope, path) => scope === path || (scope || "").startsWith(path + ".");

  function toggle(path) {
    if (collapsed.has(path)) collapsed.delete(path); else collapsed.add(path);
    redraw();
  }

  // Open every collapsed module around `scope`; a cluster that is itself the target stays.
  function reveal(scope, self) {
    const opened = [...collapsed].filter((p) => inside(scope, p) && !(self && p === scope));
    for (const path of opened) collapsed.delete(path);
    if (opened.length) redraw();
  }

  function redraw() {
    const closed = [...collapsed].filter((p) => clusterEls.has(p));
    const hiddenBy = (scope) => closed.some((p) => inside(scope, p));
    const hidden = new Set();
    for (const [id, g] of nodeEls) {
      const off = hiddenBy(level.nodes[id].scope);
      g.classList.toggle("hidden", off);
      if (off) hidden.add(id);
    }
    for (const [path, g] of clusterEls) {
      g.classList.toggle("hidden", closed.some((p) => p !== path && inside(path, p)));
    }
    for (const [tail, head, g] of edges) g.classList.toggle("hidden", hidden.has(tail) && hidden.has(head));
    for (const cover of svg.querySelectorAll("g.cover")) cover.remove();
    for (const path of closed) {
      if (!closed.some((p) => p !== path && inside(path, p))) cover(path);
    }
  }

  function cover(path) {
    const g = clusterEls.get(path), d = level.clusters[path];
    const box = g.getBBox();
    const group = document.createElementNS(SVGNS, "g");
    group.setAttribute("class", "cover");
    group.dataset.path = path;
    const rect = document.createElementNS(SVGNS, "rect");
    for (const [k, v] of Object.entries({ x: box.x, y: box.y, width: box.width, height: box.height, rx: 6 })) rect.setAttribute(k, v);
    group.appendChild(rect);
    const lines = [d.title, "collapsed · click to open"];
    if (d.in.length) lines.push("in " + d.in.join(", "));
    if (d.out.length) lines.push("out " + d.out.join(", "));
    const numbers = [];
    if (d.params[0] + d.params[1]) numbers.push(params(d.params) + " params");
    if (d.flops) numbers.push(d.flops + " FLOPs");
    numbers.push(`${d.nodes} boxes`);
    lines.push(numbers.join(" · "));
    lines.forEach((line, i) => {
      const text = document.createElementNS(SVGNS, "text");
      text.setAttribute("x", box.x + 8);
      text.setAttribute("y", box.y + 16 + i * 15);
      if (i === 0) text.setAttribute("class", "head");
      text.textContent = line;
      group.appendChild(text);
    });
    svg.querySelector("g.graph").appendChild(group);
  }

  // ---- details ------------------------------------------------------------------------
  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function params(p) {
    const n = p[0] + p[1];
    const fmt = (x) => x >= 1e9 ? (x / 1e9).toFixed(2) + "B" : x >= 1e6 ? (x / 1e6).toFixed(2) + "M" : x >= 1e3 ? (x / 1e3).toFixed(1) + "K" : String(x);
    return fmt(n);
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
      const dd = el("dd");
      if (value instanceof Node) dd.appendChild(value); else dd.textContent = String(value);
      dl.appendChild(dd);
    }
    return dl;
  }

  function list(items, render) {
    const ul = el("ul");
    for (const item of items) {
      const li = el("li");
      render(li, item);
      ul.appendChild(li);
    }
    return ul;
  }

  function valueText(v) {
    return (v.path ? v.path + ": " : "") + v.shape + (v.dtype ? " " + v.dtype : "");
  }

  function moduleLink(path) {
    const a = el("span", path, "link");
    a.addEventListener("click", () => { search.value = path; find(path, true); });
    return a;
  }

  function select(g) {
    for (const s of svg.querySelectorAll("g.selected")) s.classList.remove("selected");
    if (g) g.classList.add("selected");
  }

  function describeNode(id) {
    const d = level.nodes[id];
    select(nodeEls.get(id));
    const parts = [el("h2", d.title)];
    if (d.status) parts.push(el("span", d.status, "status " + d.status));
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
      parts.push(list(d.inputs, (li, i) => { li.textContent = `${i.from}: ${i.shape || "–"}`; }));
    }
    if (d.outputs.length) {
      parts.push(el("h3", "outputs"));
      parts.push(list(d.outputs, (li, v) => { li.textContent = valueText(v); }));
    }
    if (d.children && d.children.length) {
      parts.push(el("h3", "children"));
      parts.push(list(d.children, (li, c) => { li.append(moduleLink(c[0]), el("span", `: ${c[1]} · ${c[2]} params`)); }));
    }
    if (d.why) {
      parts.push(el("h3", "why this shape"));
      parts.push(list(d.why, (li, w) => { li.textContent = w; }));
    }
    details.replaceChildren(...parts);
  }

  function describeCluster(path) {
    const d = level.clusters[path];
    select(null);
    const parts = [el("h2", d.title)];
    const toggleButton = el("button", collapsed.has(path) ? "expand" : "collapse");
    toggleButton.addEventListener("click", () => { toggle(path); describeCluster(path); });
    parts.push(toggleButton);
    parts.push(fields([
      ["module", d.path],
      ["class", d.class + (d.repeat > 1 ? ` ×${d.repeat}` : "")],
      ["hyper-parameters", d.hparams],
      ["shared", (d.shared || []).join("; ")],
      ["parameters", paramText(d.params)],
      ["buffers", d.buffers ? d.buffers.toLocaleString("en-US") + " elements" : ""],
      ["FLOPs", d.flops],
      ["boxes inside", d.nodes],
      ["in", d.in.join(", ")],
      ["out", d.out.join(", ")],
    ]));
    if (d.children.length) {
      parts.push(el("h3", "children"));
      parts.push(list(d.children, (li, c) => { li.append(moduleLink(c[0]), el("span", `: ${c[1]} · ${c[2]} params`)); }));
    }
    details.replaceChildren(...parts);
  }

  canvas.addEventListener("click", (event) => {
    if (moved) return;  // the end of a drag, not a click
    const coverEl = event.target.closest("g.cover");
    if (coverEl) { toggle(coverEl.dataset.path); describeCluster(coverEl.dataset.path); return; }
    const node = event.target.closest("g.node");
    if (node && node.dataset.id) { describeNode(node.dataset.id); return; }
    const cluster = event.target.closest("g.cluster");
    if (cluster && cluster.dataset.path) {
      toggle(cluster.dataset.path);
      describeCluster(cluster.dataset.path);
    }
  });

  // ---- a diff's report ----------------------------------------------------------------
  const lines = $("report-lines");
  if (lines) {
    for (const line of DATA.report) {
      const li = el("li", line);
      const path = (line.match(/[A-Za-z_][\w.]*\.[\w.]+|\b[a-z_]\w*\d\b/) || [])[0];
      if (path) li.addEventListener("click", () => { search.value = path; find(path, true); });
      lines.appendChild(li);
    }
  }

  show(DATA.levels.length - 1, false);
  document.documentElement.dataset.ready = "1";
})();
