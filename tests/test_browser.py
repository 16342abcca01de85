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
from handmade import hostile_graph, hostile_names_graph

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
        self, browser: Any, path: Path, scheme: str = "light", ready: str = "html[data-ready]"
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
        self.page.goto(path.as_uri())
        self.page.wait_for_selector(ready)

    def _request(self, request: Any) -> None:
        if not request.url.startswith(("file:", "data:", "about:")):
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


def _explore_resnet(opened: Opened, name: str) -> None:
    page = opened.page
    page.fill("#search", "layer3.1.conv2")
    page.press("#search", "Enter")
    current = "#canvas g.node.current"
    assert page.locator(current).count() == 1
    assert page.locator(f"{current} > title").text_content() == "layer3_1_conv2"
    assert _in_viewport(page, current)
    assert page.inner_text("#count") == "1 of 1"
    page.click(current)
    details = page.inner_text("#details")
    assert "layer3.1.conv2 · Conv2d" in details
    assert "1×256×14×14" in details
    assert "589,824, all trainable" in details
    assert "torchvision/models/resnet.py:96" in details
    opened.screenshot(f"{name}-search")

    convs = "#canvas g.node[data-id^='layer2_']"
    assert page.locator(convs).count() > 10
    assert page.locator(f"{convs}.hidden").count() == 0
    page.click("#fit")
    page.click("#canvas g.cluster[data-path='layer2'] > text")
    hidden = page.eval_on_selector_all(
        "#canvas g.node",
        "gs => gs.filter(g => (g.dataset.id || '').startsWith('layer2_'))"
        ".map(g => getComputedStyle(g).display)",
    )
    assert hidden and set(hidden) == {"none"}
    assert page.locator("#canvas g.cover").count() == 1
    assert "layer2: Sequential" in page.inner_text("#details")
    opened.screenshot(f"{name}-collapsed")
    page.click("#canvas g.cover")  # opens again
    assert page.locator(f"{convs}.hidden").count() == 0


def test_resnet18_page(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "resnet18.html"
    graph = fxviz.trace("resnet18")
    path.write_text(to_html(graph))
    opened = Opened(browser, path)
    page = opened.page
    assert page.title() == "resnet18"
    opened.screenshot("resnet18")
    _explore_resnet(opened, "resnet18")
    # The depth control swaps in the picture Graphviz laid out at that depth.
    page.select_option("#depth", label="depth 1")
    shallow = picture(graph, DrawOptions(depth=1))
    assert page.locator("#canvas g.node[data-id]").count() == len(shallow.nodes) == 13
    assert page.locator("#canvas g.node > title", has_text="layer3").count() == 1
    opened.screenshot("resnet18-depth1")
    assert page.inner_text("#details").startswith("Click a box")  # the old selection is gone
    # A name drawn only deeper: the count says where, and Enter goes there.
    page.fill("#search", "layer3.1.conv2")
    page.wait_for_function("document.getElementById('count').textContent.startsWith('none')")
    assert page.inner_text("#count") == "none here; Enter: depth 3"  # the shallowest with it
    page.press("#search", "Enter")
    assert page.eval_on_selector("#depth", "d => d.selectedOptions[0].textContent") == ("depth 3")
    assert page.locator("#canvas g.node.current > title").text_content() == "layer3_1_conv2"
    page.select_option("#depth", label="depth 1")
    # Keyboard: zoom in, then fit.
    page.click("#fit")
    before = page.eval_on_selector("#canvas", "c => c.style.transform")
    page.keyboard.press("+")
    assert page.eval_on_selector("#canvas", "c => c.style.transform") != before
    page.keyboard.press("0")
    assert page.eval_on_selector("#canvas", "c => c.style.transform") == before
    opened.close()


def test_resnet18_page_in_the_dark(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "resnet18.html"
    path.write_text(to_html(fxviz.trace("resnet18")))
    opened = Opened(browser, path, scheme="dark")
    page = opened.page
    background = page.eval_on_selector("body", "b => getComputedStyle(b).backgroundColor")
    module_fill = page.eval_on_selector(
        "#canvas g.node[data-id='conv1'] > path, #canvas g.node[data-id='conv1'] > polygon",
        "p => getComputedStyle(p).fill",
    )
    assert background == "rgb(22, 24, 29)" and module_fill == "rgb(31, 58, 90)"
    opened.screenshot("resnet18-dark")
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
        "#canvas g.node[data-id='layer1_2_conv1'] > path",
        "p => getComputedStyle(p).fill",
    )
    assert added == "rgb(183, 228, 176)"  # dot.STATUS_COLORS["added"]
    opened.screenshot("diff-resnet18-resnet34")
    _explore_resnet(opened, "diff-resnet18-resnet34")
    page.click("#report-lines li:nth-child(2)")  # "+ 8 BasicBlock: layer1.2, …": goes there
    assert "layer1.2" in page.inner_text("#details")
    page.click("#canvas g.node.current")
    assert "added" in page.inner_text("#details")
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
    assert page.locator("script").count() == 2
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
