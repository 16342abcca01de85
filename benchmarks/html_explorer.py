"""The HTML page at scale, in headless Chromium: the README's explorer figures.

    python benchmarks/html_explorer.py                   # both pages below
    python benchmarks/html_explorer.py --page big.html   # time an existing page

1. The Llama-3-70B shape (80 layers, folded; no weights allocated): the page's size, how long
   writing it takes, and how long Chromium takes to open it (navigation until the page's
   script has shown the picture), median of 5.
2. A page of 5,000+ drawn boxes: an 86-layer Llama drawn op by op (`all_ops`, no folding),
   small widths (the picture does not depend on them). Its open time, and how long one zoom
   step (a wheel event) and one pan step (a drag move) take until the next frame is painted:
   median and worst of 30 each.

Needs `chromium` on PATH and Playwright (the test extra installs it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from llama_meta import SHAPES  # noqa: E402 (a script beside this one)

LLAMA_70B = SHAPES["70b"]  # the README's big-model figures use the same shape
OPS_LLAMA = [
    "num_hidden_layers=86",
    "hidden_size=64",
    "num_attention_heads=4",
    "num_key_value_heads=2",
    "intermediate_size=128",
    "vocab_size=1000",
]

# One frame after an input event: the event is dispatched, then two animation frames pass
# (the second starts once the first, with the new transform, was painted).
_FRAME = """async ([kind, i]) => {
  const v = document.getElementById('viewport'), r = v.getBoundingClientRect();
  const x = r.left + r.width / 2, y = r.top + r.height / 2;
  const t = performance.now();
  if (kind === 'zoom') {
    v.dispatchEvent(new WheelEvent('wheel', {deltaY: i % 2 ? 120 : -120, clientX: x,
      clientY: y, bubbles: true, cancelable: true}));
  } else {
    const dx = i % 2 ? 40 : -40;
    v.dispatchEvent(new PointerEvent('pointerdown', {button: 0, clientX: x, clientY: y,
      bubbles: true}));
    window.dispatchEvent(new PointerEvent('pointermove', {clientX: x + dx, clientY: y + dx,
      bubbles: true}));
    window.dispatchEvent(new PointerEvent('pointerup', {bubbles: true}));
  }
  await new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
  return performance.now() - t;
}"""


def write_pages(folder: Path) -> list[Path]:
    import fxviz
    from fxviz.drawing import DrawOptions, picture, to_html

    pages = []
    for name, config, options in (
        ("llama-3-70b", LLAMA_70B, DrawOptions()),
        ("llama-86-all-ops", OPS_LLAMA, DrawOptions(all_ops=True, fold=False)),
    ):
        start = time.perf_counter()
        graph = fxviz.trace("hf:llama", config=config)
        traced = time.perf_counter()
        text = to_html(graph, options)
        written = time.perf_counter()
        path = folder / f"{name}.html"
        path.write_text(text)
        boxes = len(picture(graph, options).nodes)
        print(
            f"{name}: {boxes} boxes drawn, page {len(text.encode()) / 1e6:.2f} MB; "
            f"trace {traced - start:.1f} s, page {written - traced:.1f} s"
        )
        pages.append(path)
    return pages


def time_page(path: Path, runs: int = 5, steps: int = 30) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("no chromium on PATH (apt install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        opens = []
        for _ in range(runs):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            start = time.perf_counter()
            page.goto(path.as_uri())
            page.wait_for_selector("html[data-ready]", timeout=120_000)
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => r()))")
            opens.append(time.perf_counter() - start)
            page.close()
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(path.as_uri())
        page.wait_for_selector("html[data-ready]", timeout=120_000)
        boxes = page.locator("#canvas g.node[data-id]").count()
        frames = {
            kind: [page.evaluate(_FRAME, [kind, i]) for i in range(steps)]
            for kind in ("zoom", "pan")
        }
        browser.close()
    print(
        f"{path.name}: {boxes} boxes shown; opens in {statistics.median(opens):.2f} s "
        f"(median of {runs})"
    )
    for kind, times in frames.items():
        print(
            f"  {kind} step to the next painted frame: median {statistics.median(times):.0f} ms,"
            f" worst {max(times):.0f} ms ({steps} steps)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", type=Path, help="time this page instead of writing them")
    args = parser.parse_args()
    if args.page:
        time_page(args.page.resolve())
        return
    with tempfile.TemporaryDirectory() as folder:
        for path in write_pages(Path(folder)):
            time_page(path)


if __name__ == "__main__":
    main()
