"""The HTML explorer at scale, in headless Chromium: the README's explorer figures.

    python benchmarks/html_explorer.py                     # the four pages below
    python benchmarks/html_explorer.py --only resnet18
    python benchmarks/html_explorer.py --keep pages/       # keep the pages and screenshots

For each page: how long writing it takes (after tracing), its size, how long Chromium takes
to open it (navigation until the page has laid out and painted what it opens with, median
of 5), how long opening one closed module takes until the next painted frame (40 modules
drawn at random from every level, each shown closed with the modules around it open, then
opened; median and worst, and the module whose opening adds most boxes on its own), how
long a search answer takes (a name inside a closed module: its modules opened, laid out,
centred and painted; 20 names drawn at random from the deepest boxes, median and worst),
and with every module open (all boxes on screen) the time to lay it out and paint it, and
a pan of 120 frames, fitted (every box far) and at a readable zoom: how many frames took
longer than 1.5 display frames (a dropped frame).

Needs `chromium` on PATH and Playwright (the test extra installs it).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from huge_models import SHAPES  # noqa: E402 (scripts beside this one)

OPS_LLAMA = [
    "num_hidden_layers=86",
    "hidden_size=64",
    "num_attention_heads=4",
    "num_key_value_heads=2",
    "intermediate_size=128",
    "vocab_size=1000",
]


@dataclass(frozen=True)
class Case:
    name: str
    spec: str
    config: tuple[str, ...] = ()
    all_ops: bool = False
    fold: bool = True


CASES = (
    Case("resnet18", "resnet18"),
    Case("bert-base", "hf:bert"),
    Case("llama-86-all-ops", "hf:llama", tuple(OPS_LLAMA), all_ops=True, fold=False),
    Case("llama-405b-unfolded", "hf:llama", tuple(SHAPES["llama-3.1-405b"][1]), True, False),
)

# After an action: two animation frames (the second starts once the first was painted).
_PAINTED = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"

# Module `path` shown closed (the modules around it open), then opened.
_OPEN = """async ([path]) => {
  await fxvizExplorer.reset();
  await fxvizExplorer.go(path);
  await fxvizExplorer.toggle(path, false);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const t = performance.now();
  await fxvizExplorer.toggle(path, true);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return [performance.now() - t, fxvizExplorer.visible()];
}"""

# Each module's path and how many boxes opening it adds: its own boxes and child modules.
_MODULES = """() => {
  const d = JSON.parse(document.getElementById('fxviz-data').textContent);
  const adds = d.clusters.map(() => 0);
  for (const n of d.nodes) if (n.c >= 0) adds[n.c]++;
  for (const c of d.clusters) if (c.p >= 0) adds[c.p]++;
  return d.clusters.map((c, k) => [c.path, adds[k]]);
}"""

_FIND = """async ([name]) => {
  await fxvizExplorer.reset();
  const t = performance.now();
  const found = await fxvizExplorer.find(name);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return [performance.now() - t, found];
}"""

_ALL = """async () => {
  const t = performance.now();
  await fxvizExplorer.openTo(Infinity);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return [performance.now() - t, fxvizExplorer.visible()];
}"""

# A drag across the picture, one pointer move per animation frame; the frame times.
_PAN = """async ([frames]) => {
  const v = document.getElementById('viewport'), r = v.getBoundingClientRect();
  let x = r.left + r.width / 2, y = r.top + r.height / 2;
  v.dispatchEvent(new PointerEvent('pointerdown',
    {button: 0, clientX: x, clientY: y, bubbles: true}));
  // A press comes before the first move by more than a frame; the frames measured are
  // the moves.
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const times = [];
  await new Promise(done => {
    let n = 0;
    const tick = (t) => {
      times.push(t);
      if (++n > frames) { done(); return; }
      x += n % 60 < 30 ? 9 : -9; y += n % 40 < 20 ? 7 : -7;
      window.dispatchEvent(new PointerEvent('pointermove',
        {clientX: x, clientY: y, bubbles: true}));
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  window.dispatchEvent(new PointerEvent('pointerup', {bubbles: true}));
  return times.slice(1).map((t, i) => t - times[i]);
}"""


def write_page(case: Case, folder: Path) -> tuple[Path, float, int]:
    import fxviz
    from fxviz.drawing import DrawOptions, to_html

    graph = fxviz.trace(case.spec, config=list(case.config))
    options = DrawOptions(all_ops=case.all_ops, fold=case.fold)
    start = time.perf_counter()
    text = to_html(graph, options)
    seconds = time.perf_counter() - start
    path = folder / f"{case.name}.html"
    path.write_text(text, encoding="utf-8")
    return path, seconds, len(graph.nodes)


def _ready(page: Any, path: Path) -> float:
    start = time.perf_counter()
    page.goto(path.as_uri())
    page.wait_for_selector("html[data-ready]", timeout=120_000)
    page.evaluate(_PAINTED)
    return time.perf_counter() - start


def measure(path: Path, shots: Path | None) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("no chromium on PATH (apt install chromium)")
    found: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        opens = []
        for _ in range(5):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            opens.append(_ready(page, path))
            page.close()
        found["open"] = statistics.median(opens)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        _ready(page, path)
        found["first boxes"] = page.evaluate("fxvizExplorer.visible()")
        modules = dict(page.evaluate(_MODULES))
        rng = random.Random(0)
        paths = sorted(modules)
        sample = paths if len(paths) <= 40 else rng.sample(paths, 40)
        found["expand"] = [page.evaluate(_OPEN, [p])[0] for p in sample]
        if modules:
            largest = max(paths, key=lambda p: modules[p])
            ms, boxes = page.evaluate(_OPEN, [largest])
            found["largest"] = (largest, modules[largest], ms, boxes)
        names = page.evaluate(
            "() => { const d = JSON.parse(document.getElementById('fxviz-data').textContent);"
            " return d.nodes.filter(n => n.kind === 'module' || n.kind === 'function')"
            ".map(n => [n.target.split('.').length, n.kind === 'module' ? n.target : n.id]); }"
        )
        deep = max((depth for depth, _ in names), default=0)
        pool = [name for depth, name in names if depth >= deep - 1] or [n for _, n in names]
        queries = rng.sample(pool, min(20, len(pool)))
        answers = [page.evaluate(_FIND, [q]) for q in queries]
        found["search"] = [ms for ms, hits in answers]
        found["search misses"] = sum(1 for _, hits in answers if not hits)
        if shots is not None and queries:
            page.evaluate(_FIND, [queries[0]])
            page.screenshot(path=str(shots / f"{path.stem}-search.png"))
        ms, boxes = page.evaluate(_ALL)
        found["all"] = (ms, boxes)
        page.click("#fit")
        found["pan"] = page.evaluate(_PAN, [120])
        if shots is not None:
            page.screenshot(path=str(shots / f"{path.stem}-all.png"))
        page.evaluate("fxvizExplorer.zoom(0.8)")
        found["near pan"] = page.evaluate(_PAN, [120])
        if shots is not None:
            page.screenshot(path=str(shots / f"{path.stem}-all-near.png"))
        assert not errors, errors
        browser.close()
    return found


def report(case: Case, path: Path, write_s: float, traced: int, m: dict[str, Any]) -> None:
    frame = statistics.median(m["pan"])
    dropped = sum(1 for t in m["pan"] if t > 1.5 * frame)
    near = sum(1 for t in m["near pan"] if t > 1.5 * frame)
    print(
        f"{case.name}: {traced} traced nodes, page {path.stat().st_size / 1e6:.2f} MB, "
        f"written in {write_s:.2f} s, opens in {m['open']:.2f} s with {m['first boxes']} boxes"
    )
    if m["expand"]:
        print(
            f"  open one module: median {statistics.median(m['expand']):.0f} ms, worst "
            f"{max(m['expand']):.0f} ms ({len(m['expand'])} modules)"
        )
    if "largest" in m:
        name, adds, ms, boxes = m["largest"]
        print(f"  open the largest ({name}, {adds} boxes of its own): {ms:.0f} ms, {boxes} shown")
    if m["search"]:
        print(
            f"  search answer: median {statistics.median(m['search']):.0f} ms, worst "
            f"{max(m['search']):.0f} ms ({len(m['search'])} names, {m['search misses']} missed)"
        )
    ms, boxes = m["all"]
    print(
        f"  every module open: {boxes} boxes in {ms:.0f} ms; pan, fitted: frame {frame:.1f} ms "
        f"median, worst {max(m['pan']):.1f} ms, {dropped} of {len(m['pan'])} frames dropped; "
        f"at zoom 0.8: worst {max(m['near pan']):.1f} ms, {near} dropped"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="only these pages (by name)")
    parser.add_argument("--keep", type=Path, help="write the pages and screenshots here")
    args = parser.parse_args()
    cases = [c for c in CASES if not args.only or c.name in args.only]
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        for case in cases:
            path, write_s, traced = write_page(case, folder)
            report(case, path, write_s, traced, measure(path, folder if args.keep else None))


if __name__ == "__main__":
    main()
