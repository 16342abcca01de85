"""Draw Llama-3-70B's shape on the meta device: wall time and peak memory.

    python benchmarks/llama70b.py

Hidden 8192, 80 layers, 64 heads, 8 KV heads, intermediate 28672, vocab 128256: about 70B
parameters, none of them allocated. Prints the timings of each stage, the drawn node count
after folding, and the peak resident memory of the process.
"""

from __future__ import annotations

import os
import resource
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

LLAMA_3_70B = [
    "hidden_size=8192",
    "num_hidden_layers=80",
    "num_attention_heads=64",
    "num_key_value_heads=8",
    "intermediate_size=28672",
    "vocab_size=128256",
    "max_position_embeddings=8192",
]


def main() -> None:
    start = time.perf_counter()
    import fxviz
    from fxviz.views import apply_views

    imported = time.perf_counter()
    loaded = fxviz.load("hf:llama", config=LLAMA_3_70B)
    built = time.perf_counter()
    graph = fxviz.trace(loaded)
    traced = time.perf_counter()
    drawn = apply_views(graph)
    dot = drawn.to_dot()
    done = time.perf_counter()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"params: {graph.totals.params.total / 1e9:.1f}B (all on {graph.device}); "
        f"tracer: {graph.tracer}"
    )
    print(f"nodes: {len(graph.nodes)} traced, {len(drawn.nodes)} drawn; DOT {len(dot) // 1024} KB")
    print(
        f"time: import {imported - start:.1f}s, build {built - imported:.1f}s, "
        f"trace {traced - built:.1f}s, fold+DOT {done - traced:.1f}s, total {done - start:.1f}s"
    )
    print(f"peak RSS: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
