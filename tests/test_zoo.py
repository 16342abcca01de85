"""Every torchvision model draws with its default input, and every formula fxviz explains a
shape with agrees with torch. Slow: run with `pytest -m zoo`, or `python benchmarks/zoo.py`
for a summary line and timings."""

from __future__ import annotations

import pytest

import fxviz
from fxviz.loaders.torchvision import list_torchvision_models
from fxviz.tracing.explain import BUG


@pytest.mark.zoo
@pytest.mark.parametrize("name", list_torchvision_models())
def test_torchvision_model_draws(name: str) -> None:
    graph = fxviz.trace(name)
    assert graph.outputs and any(v.is_tensor for v in graph.outputs[0].outputs)
    assert any(n.kind == "module" for n in graph.nodes)
    assert graph.totals.params.total > 0
    assert graph.to_dot().startswith("digraph")
    assert not [n.why for n in graph.nodes if any(line.startswith(BUG) for line in n.why)]
