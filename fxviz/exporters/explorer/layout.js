"use strict";
// fxviz layout: a layered (Sugiyama) layout of whatever modules are open, one module at a time.
//
// Each open module is laid out on its own: its ops and child modules (a closed child is one
// box, an open one a frame whose size is its own layout's) in ranks, with a port on its top
// border for each value coming in and one on its bottom border for each going out. A parent
// reads only its children's sizes, so opening a block re-lays out that block and its
// ancestors, and the arrangement of everything else (ranks and order, which depend only on
// which boxes and edges there are) stays as it was. Edges that cross frames are the pieces
// of each level joined at the ports. Nothing here touches the DOM: it runs in a web worker
// (or, where a page cannot start one, on the page itself).
(function (scope) {
  const GAP_X = 18, GAP_Y = 28, PAD = 10, HEAD = 20, LINE = 14, FONT = "11px Helvetica, Arial, sans-serif";
  const SWEEPS = 4, PASSES = 6;

  // ---- text width ----------------------------------------------------------------------
  let context = null;
  try {
    if (typeof OffscreenCanvas !== "undefined") context = new OffscreenCanvas(1, 1).getContext("2d");
    else if (typeof document !== "undefined") context = document.createElement("canvas").getContext("2d");
    if (context) context.font = FONT;
  } catch (error) { context = null; }
  const widths = new Map();
  function width(text) {
    let w = widths.get(text);
    if (w === undefined) {
      w = context ? context.measureText(text).width : text.length * 6.2;
      widths.set(text, w);
    }
    return w;
  }
  function boxSize(lines, bold) {
    let w = 0;
    for (const line of lines) w = Math.max(w, width(line) * (bold ? 1.08 : 1));
    return [Math.ceil(w) + 16, lines.length * LINE + 10];
  }

  // ---- the model -----------------------------------------------------------------------
  // nodes: [{c: cluster index or -1, lines}], clusters: [{p: parent or -1, lines, o: first
  // node index}] with every parent before its children, edges: [[tail, head], ...].
  function prepare(model) {
    const nn = model.nodes.length;
    const size = model.nodes.map((n) => boxSize(n.lines, false));
    const boxes = model.clusters.map((c) => boxSize(c.lines, true));
    const depth = model.clusters.map(() => 0);
    model.clusters.forEach((c, i) => { depth[i] = c.p < 0 ? 1 : depth[c.p] + 1; });
    return { ...model, nn, size, boxes, depth };
  }

  function layout(M, expanded, across) {
    const nn = M.nn, nc = M.clusters.length;
    const open = new Uint8Array(nc);
    for (const c of expanded) if (c >= 0 && c < nc) open[c] = 1;
    // The outermost closed cluster around each cluster (-1: it and its ancestors are open).
    const boxOf = new Int32Array(nc);
    for (let c = 0; c < nc; c++) {
      const p = M.clusters[c].p, above = p < 0 ? -1 : boxOf[p];
      boxOf[c] = above >= 0 ? above : (open[c] ? -1 : c);
    }
    // Units (what is drawn as one box): node i is unit i, a closed cluster c is unit nn + c.
    const unitOf = (i) => {
      const c = M.nodes[i].c;
      return c < 0 || boxOf[c] < 0 ? i : nn + boxOf[c];
    };
    // The open cluster a unit or frame sits in (-1: the root); member ids as units, with an
    // open cluster c as nn + c (its frame).
    const containerOf = (m) => (m < nn ? M.nodes[m].c : M.clusters[m - nn].p);
    const depthOf = (k) => (k < 0 ? 0 : M.depth[k]);
    const parentOf = (k) => M.clusters[k].p;

    // Every visible edge between units, once, and its pieces at each level.
    const levels = new Map();  // container -> {members: Set, edges: Map key -> [from, to], ins: Map, outs: Map}
    const level = (k) => {
      let L = levels.get(k);
      if (!L) { L = { members: new Set(), edges: new Map(), ins: new Map(), outs: new Map() }; levels.set(k, L); }
      return L;
    };
    level(-1);
    const seen = new Uint8Array(nn + nc);
    function addMember(m) {
      // A unit and every frame around it are members of their containers.
      while (!seen[m]) {
        seen[m] = 1;
        const k = containerOf(m);
        level(k).members.add(m);
        if (m >= nn && open[m - nn]) level(m - nn);
        if (k < 0) break;
        m = nn + k;
      }
    }
    for (let i = 0; i < nn; i++) {
      addMember(unitOf(i));
    }
    for (let c = 0; c < nc; c++) if (open[c] && boxOf[c] < 0) { addMember(nn + c); level(c); }

    const pairs = new Map();  // "a b" -> pieces
    const edgeList = [];
    for (const [tail, head] of M.edges) {
      const a = unitOf(tail), b = unitOf(head);
      if (a === b) continue;
      const key = a + " " + b;
      if (pairs.has(key)) continue;
      // Walk both ends up to their common container.
      let ma = a, ka = containerOf(a), mb = b, kb = containerOf(b);
      const up = [], down = [];
      while (ka !== kb) {
        if (depthOf(ka) >= depthOf(kb)) {
          up.push([ka, ma]);
          ma = nn + ka; ka = parentOf(ka);
        } else {
          down.push([kb, mb]);
          mb = nn + kb; kb = parentOf(kb);
        }
      }
      const pieces = [];
      for (const [k, m] of up) {
        const L = level(k);
        if (!L.outs.has(m)) L.outs.set(m, "o" + m);
        const id = "o" + m, ek = m + ">" + id;
        if (!L.edges.has(ek)) L.edges.set(ek, [m, id]);
        pieces.push([k, ek, "out"]);
      }
      const L = level(ka), ek = ma + ">" + mb;
      if (!L.edges.has(ek)) L.edges.set(ek, [ma, mb]);
      pieces.push([ka, ek, "mid"]);
      for (let j = down.length - 1; j >= 0; j--) {
        const [k, m] = down[j], D = level(k), id = "i" + a;
        if (!D.ins.has(a)) D.ins.set(a, id);
        const dk = id + ">" + m;
        if (!D.edges.has(dk)) D.edges.set(dk, [id, m]);
        pieces.push([k, dk, "in"]);
      }
      pairs.set(key, pieces);
      edgeList.push([a, b, pieces]);
    }

    // Lay out the deepest open clusters first: a frame's size is its layout's.
    const order = [...levels.keys()].sort((x, y) => depthOf(y) - depthOf(x));
    const done = new Map();
    for (const k of order) done.set(k, layoutLevel(M, k, levels.get(k), done, k < 0 ? 0 : HEAD, across));

    // Absolute positions, from the root down.
    const items = [], frames = [], origin = new Map();
    origin.set(-1, [0, 0]);
    for (const k of [...order].reverse()) {
      const R = done.get(k), [ox, oy] = origin.get(k);
      for (const [m, p] of R.pos) {
        if (typeof m === "string") continue;  // a port
        const x = ox + p.x - p.w / 2, y = oy + p.y - p.h / 2;
        if (m >= nn && open[m - nn]) {
          origin.set(m - nn, [x, y]);
          frames.push([m - nn, x, y, p.w, p.h]);
        } else items.push([m, x, y, p.w, p.h]);
      }
    }
    frames.sort((f, g) => depthOf(f[0]) - depthOf(g[0]));

    const edges = [];
    for (const [a, b, pieces] of edgeList) {
      let points = [];
      for (const [k, ek, kind] of pieces) {
        const R = done.get(k), [ox, oy] = origin.get(k);
        let piece = R.routes.get(ek).map(([x, y]) => [ox + x, oy + y]);
        // Joined at a port: the port, not the frame's middle, is where the line crosses.
        if (points.length && kind !== "in") piece = piece.slice(1);
        if (kind === "in" && points.length) points.pop();
        points = points.concat(piece);
      }
      const flat = [];
      for (const [x, y] of points) flat.push(Math.round(x * 10) / 10, Math.round(y * 10) / 10);
      edges.push([a, b, flat]);
    }
    const root = done.get(-1);
    if (!across) return { items, frames, edges, width: root.w, height: root.h };
    // Laid out with ranks down and each box turned; turned back, the ranks run across.
    const turn = ([m, x, y, w, h]) => [m, y, x, h, w];
    for (const e of edges) {
      const p = e[2];
      for (let j = 0; j < p.length; j += 2) { const x = p[j]; p[j] = p[j + 1]; p[j + 1] = x; }
    }
    return { items: items.map(turn), frames: frames.map(turn), edges, width: root.h, height: root.w };
  }

  // ---- one level -----------------------------------------------------------------------
  function layoutLevel(M, k, L, done, head, across) {
    const nn = M.nn;
    const ids = [...L.members];
    const order = (m) => (m < nn ? m : M.clusters[m - nn].o);
    ids.sort((x, y) => order(x) - order(y));
    const ins = [...L.ins.values()], outs = [...L.outs.values()];
    const size = (m) => {
      if (typeof m === "string") return [0, 0];
      if (m >= nn && done.has(m - nn)) return [done.get(m - nn).w, done.get(m - nn).h];
      const [w, h] = m < nn ? M.size[m] : M.boxes[m - nn];
      return across ? [h, w] : [w, h];
    };
    // A frame's heading sits above its boxes; with ranks across, that is this layout's left.
    const topPad = across ? PAD : head + PAD, sidePad = across ? head + PAD : PAD;
    const ord = new Map();
    ins.forEach((p, i) => ord.set(p, -1 - ins.length + i));
    ids.forEach((m) => ord.set(m, order(m)));
    outs.forEach((p, i) => ord.set(p, Infinity));
    const outIndex = new Map(outs.map((p, i) => [p, i]));
    // Edges oriented along the order the model ran in, so that ranks never loop.
    const succ = new Map(), pred = new Map();
    for (const m of [...ins, ...ids, ...outs]) { succ.set(m, []); pred.set(m, []); }
    const oriented = [];
    for (const [key, [u, v]] of L.edges) {
      let s = u, t = v;
      const before = ord.get(s) < ord.get(t) || (ord.get(s) === ord.get(t) && outIndex.has(t));
      if (!before) { s = v; t = u; }
      succ.get(s).push(t); pred.get(t).push(s);
      oriented.push([key, s, t, !before]);
    }
    // Ranks: longest path over the members; sources moved down to just above their first
    // reader (a constant read late is drawn where it is read); ports above and below all.
    const rank = new Map();
    for (const m of ids) {
      let r = 0;
      for (const p of pred.get(m)) if (rank.has(p)) r = Math.max(r, rank.get(p) + 1);
      rank.set(m, r);
    }
    for (let j = ids.length - 1; j >= 0; j--) {
      const m = ids[j];
      if (pred.get(m).some((p) => rank.has(p))) continue;
      const below = succ.get(m).filter((s) => rank.has(s)).map((s) => rank.get(s));
      if (below.length) rank.set(m, Math.max(rank.get(m), Math.min(...below) - 1));
    }
    const shift = ins.length ? 1 : 0;
    let top = 0;
    for (const m of ids) { rank.set(m, rank.get(m) + shift); top = Math.max(top, rank.get(m)); }
    for (const p of ins) rank.set(p, 0);
    for (const p of outs) rank.set(p, top + 1);
    const ranks = top + 1 + (outs.length ? 1 : 0);

    // Long edges: one chain of bends per source down to its furthest reader (edges from one
    // value share it, as one wire with taps), so a value read by 80 layers costs 80 bends,
    // not 80² / 2.
    const layers = Array.from({ length: ranks }, () => []);
    for (const m of [...ins, ...ids, ...outs]) layers[rank.get(m)].push(m);
    const chain = new Map();  // source -> [bend per rank below it]
    const paths = new Map();  // edge key -> [items]
    const bendOrd = new Map();
    let bends = 0;
    for (const [key, s, t] of oriented) {
      const rs = rank.get(s), rt = rank.get(t);
      let bendsOf = chain.get(s);
      if (!bendsOf) { bendsOf = []; chain.set(s, bendsOf); }
      const path = [s];
      for (let r = rs + 1; r < rt; r++) {
        const j = r - rs - 1;
        if (bendsOf[j] === undefined) {
          const bend = "b" + bends++;
          bendsOf[j] = bend;
          rank.set(bend, r);
          layers[r].push(bend);
          bendOrd.set(bend, ord.get(s) + 0.5);
        }
        path.push(bendsOf[j]);
      }
      path.push(t);
      paths.set(key, path);
    }
    // Adjacent pairs, with weights: a straight run of bends matters most.
    const up = new Map(), down = new Map();
    for (const layer of layers) for (const m of layer) { up.set(m, []); down.set(m, []); }
    const segs = new Set();
    for (const path of paths.values()) {
      for (let j = 0; j + 1 < path.length; j++) {
        const a = path[j], b = path[j + 1], sk = a + "|" + b;
        if (segs.has(sk)) continue;
        segs.add(sk);
        const w = (typeof a === "string" && a[0] === "b") && (typeof b === "string" && b[0] === "b") ? 8 : 1;
        down.get(a).push([b, w]);
        up.get(b).push([a, w]);
      }
    }

    // Order in each rank: the order the model ran in, then barycentre sweeps.
    const key = (m) => (bendOrd.has(m) ? bendOrd.get(m) : ord.get(m));
    for (const layer of layers) layer.sort((x, y) => key(x) - key(y));
    const index = new Map();
    const reindex = (layer) => layer.forEach((m, i) => index.set(m, i));
    layers.forEach(reindex);
    const sweep = (layer, near) => {
      const bary = new Map();
      for (const m of layer) {
        const ns = near.get(m);
        if (!ns.length) continue;
        let s = 0, w = 0;
        for (const [n, weight] of ns) { s += index.get(n) * weight; w += weight; }
        bary.set(m, s / w);
      }
      const placed = layer.map((m, i) => [bary.has(m) ? bary.get(m) : i, i, m]);
      placed.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
      placed.forEach(([, , m], i) => { layer[i] = m; });
      reindex(layer);
    };
    for (let s = 0; s < SWEEPS; s++) {
      for (let r = 1; r < ranks; r++) if (layers[r].length > 1) sweep(layers[r], up);
      for (let r = ranks - 2; r >= 0; r--) if (layers[r].length > 1) sweep(layers[r], down);
    }

    // x: each rank packed, then moved towards its neighbours' centres, keeping the order
    // and the gaps (pool-adjacent-violators: the least squared move that keeps both).
    const x = new Map(), w = new Map(), h = new Map();
    for (const layer of layers) {
      let at = 0;
      for (const m of layer) {
        const [mw, mh] = typeof m === "string" && m[0] === "b" ? [0, 0] : size(m);
        w.set(m, mw); h.set(m, mh);
        x.set(m, at + mw / 2);
        at += mw + GAP_X;
      }
    }
    const place = (layer, nears) => {
      const n = layer.length;
      const target = new Float64Array(n), weight = new Float64Array(n), offset = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const m = layer[i];
        let s = 0, ws = 0;
        for (const near of nears) for (const [o, wt] of near.get(m)) { s += x.get(o) * wt; ws += wt; }
        target[i] = ws ? s / ws : x.get(m);
        weight[i] = ws || 0.01;
        if (i) offset[i] = offset[i - 1] + (w.get(layer[i - 1]) + w.get(m)) / 2 + (gapOf(layer[i - 1], m));
      }
      // Blocks of [start, end, weighted mean of (target - offset)].
      const blocks = [];
      for (let i = 0; i < n; i++) {
        let b = { s: i, e: i, sum: (target[i] - offset[i]) * weight[i], w: weight[i] };
        while (blocks.length && blocks[blocks.length - 1].sum / blocks[blocks.length - 1].w >= b.sum / b.w) {
          const a = blocks.pop();
          b = { s: a.s, e: b.e, sum: a.sum + b.sum, w: a.w + b.w };
        }
        blocks.push(b);
      }
      for (const b of blocks) for (let i = b.s; i <= b.e; i++) x.set(layer[i], b.sum / b.w + offset[i]);
    };
    const gapOf = (a, b) => ((typeof a === "string" && a[0] === "b") || (typeof b === "string" && b[0] === "b") ? 8 : GAP_X);
    for (let p = 0; p < PASSES; p++) {
      for (let r = 1; r < ranks; r++) place(layers[r], p ? [up, down] : [up]);
      for (let r = ranks - 2; r >= 0; r--) place(layers[r], [up, down]);
    }
    // y: each rank as tall as its tallest box, boxes centred in it.
    const ys = [], heights = [];
    let at = topPad;
    for (let r = 0; r < ranks; r++) {
      let tall = 0;
      for (const m of layers[r]) tall = Math.max(tall, h.get(m));
      heights.push(tall);
      ys.push(at);
      at += tall + (r + 1 < ranks && (tall || heights[r]) ? GAP_Y : GAP_Y / 2);
    }
    let left = Infinity, right = -Infinity;
    for (const [m, cx] of x) { left = Math.min(left, cx - w.get(m) / 2); right = Math.max(right, cx + w.get(m) / 2); }
    if (!isFinite(left)) { left = 0; right = 0; }
    const dx = sidePad - left;
    const heading = k < 0 ? 0 : (across ? head : M.boxes[k][0] + 2 * PAD);
    const W = Math.max(right - left + sidePad + PAD, heading);
    const H = at - (ranks ? GAP_Y : 0) + PAD + (outs.length ? 0 : 0);
    const pos = new Map();
    for (let r = 0; r < ranks; r++) {
      for (const m of layers[r]) {
        let cy = ys[r] + heights[r] / 2;
        if (typeof m === "string" && m[0] === "i") cy = 0;
        if (typeof m === "string" && m[0] === "o") cy = H;
        pos.set(m, { x: x.get(m) + dx, y: cy, w: w.get(m), h: h.get(m), r });
      }
    }
    // Routes: from the bottom of the tail, through each bend (the top and bottom of its
    // rank, so that the wire runs straight past tall boxes), to the top of the head.
    const routes = new Map();
    for (const [key2, s, t, reversed] of oriented) {
      const path = paths.get(key2), pts = [];
      for (let j = 0; j < path.length; j++) {
        const p = pos.get(path[j]);
        if (j === 0) pts.push([p.x, p.y + p.h / 2]);
        else if (j === path.length - 1) pts.push([p.x, p.y - p.h / 2]);
        else { pts.push([p.x, ys[p.r]]); pts.push([p.x, ys[p.r] + heights[p.r]]); }
      }
      routes.set(key2, reversed ? pts.reverse() : pts);
    }
    for (const [m] of pos) if (typeof m === "string" && m[0] === "b") pos.delete(m);
    return { pos, routes, w: W, h: H };
  }

  const api = { prepare, layout };
  if (typeof window === "undefined" && typeof postMessage === "function") {
    let model = null;
    scope.onmessage = (event) => {
      const message = event.data;
      if (message.model) { model = prepare(message.model); return; }
      const started = Date.now();
      const result = layout(model, message.expanded, message.across);
      result.seq = message.seq;
      result.ms = Date.now() - started;
      postMessage(result);
    };
  } else {
    scope.fxvizLayout = api;
  }
})(typeof self !== "undefined" ? self : this);
