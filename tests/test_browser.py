"""The HTML pages in a real browser: Debian's `chromium`, headless, driven by Playwright.

Each page is opened from file:// with every network request failing the test. Screenshots go
to test-artifacts/ (FXVIZ_ARTIFACTS to put them elsewhere) for a person to look at. Where no
Chromium or no Playwright exists these tests skip and say why; .ci/run installs both.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from handmade import TINY_LLAMA, hostile_graph, hostile_names_graph

import fxviz
from fxviz.drawing import DrawOptions, picture, to_html

REPO = Path(__file__).parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("FXVIZ_ARTIFACTS", REPO / "test-artifacts"))

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None

pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None, reason="no chromium on PATH (apt install chromium; .ci/run does)"
    ),
    pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert sync_playwright is not None
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


class Opened:
    """A page opened from file://, with what it asked the network for, the dialogs it tried
    to open and the errors its script raised."""

    def __init__(
        self,
        browser: Any,
        path: Path,
        scheme: str = "light",
        ready: str = "html[data-ready]",
        fragment: str = "",
    ) -> None:
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(
            viewport={"width": 1400, "height": 900}, color_scheme=scheme
        )
        self.page = self.context.new_page()
        self.page.on("request", self._request)
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.goto(path.as_uri() + fragment)
        self.page.wait_for_selector(ready)

    def _request(self, request: Any) -> None:
        if not request.url.startswith(("file:", "data:", "about:", "blob:")):
            self.requests.append(request.url)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))

    def close(self) -> None:
        self.context.close()
        assert not self.requests, f"the page asked the network for {self.requests}"
        assert not self.errors, self.errors
        assert not self.dialogs, self.dialogs


def _in_viewport(page: Any, selector: str) -> bool:
    return bool(
        page.eval_on_selector(
            selector,
            """g => {
              const r = g.getBoundingClientRect(), v = document.getElementById('viewport')
                .getBoundingClientRect();
              return r.width > 0 && r.left >= v.left && r.right <= v.right
                && r.top >= v.top && r.bottom <= v.bottom;
            }""",
        )
    )


def _screen(page: Any, selector: str) -> list[float]:
    return [
        round(v)
        for v in page.eval_on_selector(
            selector, "g => { const r = g.getBoundingClientRect(); return [r.left, r.top]; }"
        )
    ]


def _drawn(page: Any, seq: int) -> None:
    """Wait until the page has drawn layout `seq` or a later one."""
    page.wait_for_function(f"() => Number(document.documentElement.dataset.layout) >= {seq}")


def _layout(page: Any) -> int:
    return int(page.evaluate("Number(document.documentElement.dataset.layout)"))


def _explore_resnet(opened: Opened, name: str) -> None:
    page = opened.page
    page.fill("#search", "layer3.1.conv2")
    page.press("#search", "Enter")
    current = "#canvas g.node.current"
    page.wait_for_selector(current)
    assert page.locator(current).count() == 1
    assert page.locator(current).get_attribute("data-id") == "layer3_1_conv2"
    assert _in_viewport(page, current)
    assert page.inner_text("#count") == "1 of 1"
    assert page.evaluate("location.hash") == "#layer3.1.conv2"
    page.click(current)
    details = page.inner_text("#details")
    assert "layer3.1.conv2 · Conv2d" in details
    assert "1×256×14×14" in details
    assert "589,824, all trainable" in details
    assert "torchvision/models/resnet.py:96" in details
    opened.screenshot(f"{name}-search")


def test_resnet18_page(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "resnet18.html"
    graph = fxviz.trace("resnet18")
    path.write_text(to_html(graph))
    opened = Opened(browser, path)
    page = opened.page
    assert page.title() == "resnet18"
    assert page.evaluate("fxvizExplorer.worker()")  # laid out off the page's thread
    # It opens with every module open: 71 boxes, one screen at a readable size.
    assert page.evaluate("fxvizExplorer.visible()") == len(picture(graph, DrawOptions()).nodes)
    opened.screenshot("resnet18")
    _explore_resnet(opened, "resnet18")

    # Closing a module in place: its boxes leave, one box stands for it, what is around it
    # stays where it was on screen.
    page.fill("#search", "layer2")
    page.press("#search", "Enter")
    page.wait_for_selector("#canvas g.cluster.current[data-path='layer2']")
    above = _screen(page, "#canvas g.cluster[data-path='layer1']")
    seq = _layout(page)
    page.click("#canvas g.cluster[data-path='layer2'] > text")
    _drawn(page, seq + 1)
    assert page.locator("#canvas g.node[data-id^='layer2_']").count() == 0
    assert page.locator("#canvas g.block[data-path='layer2']").count() == 1
    block = page.text_content("#canvas g.block[data-path='layer2']") or ""
    assert "layer2: Sequential" in block and "1×64×56×56 → 1×128×28×28" in block
    assert "layer2: Sequential" in page.inner_text("#details")
    assert _screen(page, "#canvas g.cluster[data-path='layer1']") == above
    opened.screenshot("resnet18-closed")
    seq = _layout(page)
    page.click("#canvas g.block[data-path='layer2']")  # opens again
    _drawn(page, seq + 1)
    assert page.locator("#canvas g.node[data-id^='layer2_']").count() > 10
    assert _screen(page, "#canvas g.cluster[data-path='layer1']") == above

    # Search finds a box inside a closed module, and opens the modules around it.
    page.evaluate("fxvizExplorer.toggle('layer4', false)")
    assert page.locator("#canvas g.node[data-id^='layer4_']").count() == 0
    page.fill("#search", "layer4.1.bn2")
    page.press("#search", "Enter")
    page.wait_for_selector("#canvas g.node.current[data-id='layer4_1_bn2']")
    assert _in_viewport(page, "#canvas g.node.current")

    # The depth control closes everything below a depth.
    page.select_option("#depth", label="open to depth 1")
    page.wait_for_function("() => fxvizExplorer.visible() === 13")
    assert page.locator("#canvas g.block").count() == 4  # layer1 … layer4
    opened.screenshot("resnet18-depth1")

    # Keyboard: j/k walk the boxes in the order the model ran, Enter opens the selected
    # module, Backspace closes the one around the selection.
    page.click("#canvas g.node[data-id='maxpool']")
    page.focus("#viewport")
    page.keyboard.press("j")
    assert "layer1: Sequential" in page.inner_text("#details")
    seq = _layout(page)
    page.keyboard.press("Enter")
    _drawn(page, seq + 1)
    assert page.locator("#canvas g.block[data-path='layer1.0']").count() == 1
    page.keyboard.press("j")
    assert "layer1.0: BasicBlock" in page.inner_text("#details")
    seq = _layout(page)
    page.keyboard.press("Backspace")
    _drawn(page, seq + 1)
    assert page.locator("#canvas g.block[data-path='layer1']").count() == 1
    page.click("#fit")
    before = page.eval_on_selector("#canvas", "c => c.style.transform")
    page.keyboard.press("+")
    assert page.eval_on_selector("#canvas", "c => c.style.transform") != before
    page.keyboard.press("0")
    assert page.eval_on_selector("#canvas", "c => c.style.transform") == before

    # The minimap moves the view to where it is clicked.
    page.keyboard.press("+")
    page.keyboard.press("+")
    before = page.eval_on_selector("#canvas", "c => c.style.transform")
    box = page.locator("#minimap").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] - 3)
    assert page.eval_on_selector("#canvas", "c => c.style.transform") != before
    opened.close()


def test_a_deep_link_opens_the_page_there(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "resnet18.html"
    path.write_text(to_html(fxviz.trace("resnet18"), DrawOptions()))
    link = tmp_path / "link.html"
    link.write_text(path.read_text())
    opened = Opened(browser, link, fragment="#layer4.0.downsample.0")
    page = opened.page
    current = "#canvas g.node.selected[data-id='layer4_0_downsample_0']"
    page.wait_for_selector(current)
    assert _in_viewport(page, current)
    assert "layer4.0.downsample.0 · Conv2d" in page.inner_text("#details")
    # A module's path opens the page on its frame.
    page.evaluate("location.hash = '#layer2.1'")
    page.wait_for_function("() => location.hash === '#layer2.1'")
    page.wait_for_function("() => document.getElementById('details').innerText.includes('2.1')")
    assert "BasicBlock" in page.inner_text("#details")
    opened.close()


def test_resnet18_page_in_the_dark(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "resnet18.html"
    path.write_text(to_html(fxviz.trace("resnet18")))
    opened = Opened(browser, path, scheme="dark")
    page = opened.page

    def colours() -> tuple[str, str]:
        background = page.eval_on_selector("body", "b => getComputedStyle(b).backgroundColor")
        fill = page.eval_on_selector(
            "#canvas g.node[data-id='conv1'] > rect", "r => getComputedStyle(r).fill"
        )
        return background, fill

    assert colours() == ("rgb(22, 24, 29)", "rgb(31, 58, 90)")
    opened.screenshot("resnet18-dark")
    page.click("#theme")  # the reader's own choice over the system's
    assert colours() == ("rgb(255, 255, 255)", "rgb(219, 232, 246)")
    opened.close()


def test_ranks_run_across_with_rankdir_lr(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "lenet.html"
    graph = fxviz.trace(f"{REPO}/examples/lenet.py:LeNet")
    path.write_text(to_html(graph, DrawOptions(rankdir="LR")))
    opened = Opened(browser, path)
    page = opened.page
    ids = [n.id for n in picture(graph, DrawOptions()).nodes]
    where = [_screen(page, f"#canvas g.node[data-id='{i}']") for i in (ids[0], ids[1], ids[-1])]
    assert where[0][0] < where[1][0] < where[2][0]  # left to right, in the order it ran
    assert abs(where[0][1] - where[2][1]) < 60  # on one row
    opened.screenshot("lenet-lr")
    opened.close()


def test_the_current_view_saves_as_svg_and_png(browser: Any, tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    path = tmp_path / "resnet18.html"
    path.write_text(to_html(fxviz.trace("resnet18")))
    opened = Opened(browser, path)
    page = opened.page
    page.evaluate("fxvizExplorer.toggle('layer3', false)")
    with page.expect_download() as got:
        page.click("#save-svg")
    saved = tmp_path / "saved.svg"
    got.value.save_as(saved)
    assert got.value.suggested_filename == "resnet18.svg"
    tree = ET.parse(saved)
    ns = "{http://www.w3.org/2000/svg}"
    groups = [g for g in tree.iter(f"{ns}g") if "node" in (g.get("class") or "").split()]
    assert len(groups) == page.evaluate("fxvizExplorer.visible()")  # all of it, not the window
    assert any("block" in (g.get("class") or "") for g in groups)  # layer3, closed
    with page.expect_download() as got:
        page.click("#save-png")
    png = tmp_path / "saved.png"
    got.value.save_as(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    opened.close()


def test_a_big_page_draws_only_the_window(browser: Any, tmp_path: Path) -> None:
    """Hundreds of boxes open: near, the document holds what is in or near the window;
    far, a canvas draws every box; a name deep inside opens its path."""
    graph = fxviz.trace(
        "hf:llama",
        config=TINY_LLAMA,
    )
    path = tmp_path / "llama.html"
    path.write_text(to_html(graph, DrawOptions(all_ops=True, fold=False)))
    opened = Opened(browser, path)
    page = opened.page
    first = page.evaluate("fxvizExplorer.visible()")
    assert 20 < first < 200
    page.evaluate("fxvizExplorer.openTo(Infinity)")
    boxes = page.evaluate("fxvizExplorer.visible()")
    assert boxes == len(picture(graph, DrawOptions(all_ops=True, fold=False, fit=False)).nodes)
    page.keyboard.press("0")  # fit: every box far away
    assert page.evaluate("!document.getElementById('overview').hidden")
    assert page.locator("#canvas g.node").count() == 0
    opened.screenshot("llama-12-far")
    assert page.evaluate("fxvizExplorer.find('layers.7.mlp.down_proj')") == 1
    page.wait_for_selector("#canvas g.node.current")
    assert page.evaluate("document.getElementById('overview').hidden")
    assert 0 < page.locator("#canvas g.node").count() < boxes / 2
    assert "layers.7.mlp.down_proj · Linear" in page.inner_text("#details")
    opened.screenshot("llama-12-near")
    opened.close()


def test_the_diff_page(browser: Any, tmp_path: Path) -> None:
    from fxviz.diff import diff
    from fxviz.exporters.html import diff_page

    a, b = fxviz.trace("resnet18"), fxviz.trace("resnet34")
    path = tmp_path / "diff.html"
    path.write_text(diff_page(a, b, diff(a, b)))
    opened = Opened(browser, path)
    page = opened.page
    report = page.inner_text("#report")
    assert "8 added" in report and "+10,108,160" in report
    added = page.eval_on_selector(
        "#canvas g.node[data-id='layer1_2_conv1'] > rect", "r => getComputedStyle(r).fill"
    )
    assert added == "rgb(183, 228, 176)"  # dot.STATUS_COLORS["added"]
    opened.screenshot("diff-resnet18-resnet34")
    _explore_resnet(opened, "diff-resnet18-resnet34")
    # A closed block says what changed inside; opening it shows both sides' boxes at once.
    page.evaluate("fxvizExplorer.openTo(1)")
    block = "#canvas g.block.changed-inside[data-path='layer1']"
    page.wait_for_selector(block)
    assert "added inside" in (page.text_content(block) or "")
    assert page.locator("#canvas g.block[data-path='layer1']:not(.changed-inside)").count() == 0
    seq = _layout(page)
    page.click(block)
    _drawn(page, seq + 1)
    page.evaluate("fxvizExplorer.toggle('layer1.2', true)")
    assert page.locator("#canvas g.node.added[data-id='layer1_2_conv1']").count() == 1
    assert page.locator("#canvas g.block[data-path='layer1.1']:not(.changed-inside)").count() == 1
    page.evaluate("fxvizExplorer.openTo(1)")
    page.click("#report-lines li:nth-child(2)")  # "+ 8 BasicBlock: layer1.2, …": goes there
    page.wait_for_function("() => location.hash === '#layer1.2'")
    assert page.locator("#canvas g.block.changed-inside.current[data-path='layer1.2']").count() == 1
    assert _in_viewport(page, "#canvas g.block.current")
    opened.close()


def _hostile_model() -> fxviz.Graph:
    """A traced model whose module names and class name are markup, a script end, and
    Mermaid's syntax."""
    import torch
    from torch import nn

    evil = type("<img src=x onerror=alert(1)>", (nn.Module,), {"forward": torch.relu})

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.add_module("</script><script>alert(1)</script>", nn.Linear(4, 4))
            self.add_module('"]; A-->B {x}', evil())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for child in self.children():
                x = child(x)
            return x

    return fxviz.trace(Model(), torch.randn(1, 4), expand=("<img src=x onerror=alert(1)>",))


HOSTILE = {"hostile": hostile_graph, "names": hostile_names_graph, "model": _hostile_model}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_run_nothing(browser: Any, tmp_path: Path, name: str) -> None:
    graph = HOSTILE[name]()
    path = tmp_path / "hostile.html"
    path.write_text(to_html(graph))
    opened = Opened(browser, path)
    page = opened.page
    assert page.title() == graph.name
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 3
    for node in picture(graph, DrawOptions()).nodes:  # each name reaches the panel as text
        page.eval_on_selector(
            "#canvas",
            '(c, id) => c.querySelector(`g.node[data-id="${CSS.escape(id)}"]`)'
            ".dispatchEvent(new MouseEvent('click', {bubbles: true}))",
            node.id,
        )
        assert node.target.replace("\n", " ").split()[0] in page.inner_text("#details")
    page.fill("#search", "<img")
    page.press("#search", "Enter")
    page.wait_for_timeout(50)
    opened.screenshot(f"hostile-{name}")
    assert page.locator("img").count() == 0
    # The new ways names reach the screen: closed modules' boxes (their headings), a deep
    # link to each name, and the saved SVG.
    page.evaluate("fxvizExplorer.openTo(1)")
    for block in page.locator("#canvas g.block").all():
        assert block.get_attribute("data-path") in (block.text_content() or "")
    for node in picture(graph, DrawOptions()).nodes:
        page.evaluate("name => { location.hash = '#' + encodeURIComponent(name); }", node.target)
        page.wait_for_timeout(20)
    assert page.locator("img").count() == 0
    with page.expect_download() as got:
        page.click("#save-svg")
    saved = tmp_path / "saved.svg"
    got.value.save_as(saved)
    import xml.etree.ElementTree as ET

    tags = {e.tag.rpartition("}")[2] for e in ET.parse(saved).iter()}
    assert tags <= {"svg", "defs", "marker", "path", "style", "rect", "g", "text"}
    drawn = "".join(ET.parse(saved).getroot().itertext())
    assert graph.nodes[-1].target.split()[0] in drawn or graph.nodes[1].target.split()[0] in drawn
    opened.close()


def test_the_notebook_display_runs_in_its_sandbox(browser: Any, tmp_path: Path) -> None:
    """A notebook shows `_repr_html_` inline: the iframe's page must work there too."""
    graph = hostile_names_graph()
    path = tmp_path / "notebook.html"
    path.write_text(f"<!doctype html><html><body>{graph._repr_html_()}</body></html>")
    opened = Opened(browser, path, ready="iframe")
    frame = opened.page.frame_locator("iframe")
    frame.locator("html[data-ready]").wait_for()
    assert frame.locator("#canvas g.node[data-id]").count() == len(graph.nodes)
    assert opened.page.locator("img").count() == 0
    opened.close()
