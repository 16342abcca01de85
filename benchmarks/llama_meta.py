"""Draw a Llama shape on the meta device: wall time of each stage and peak memory.

    python benchmarks/llama_meta.py              # Llama-3-70B: the README's big-model figures
    python benchmarks/llama_meta.py --shape 7b   # Llama-2-7B: the README's opening figure

70b: hidden 8192, 80 layers, 64 heads, 8 KV heads, intermediate 28672, vocab 128256 (about
70B parameters). 7b: hidden 4096, 32 layers, 32 heads, intermediate 11008, vocab 32000 (about
6.7B). None of the parameters is allocated. Prints the timings of each stage, the traced and
drawn node counts, and the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHAPES = {
    "70b": [
        "hidden_size=8192",
        "num_hidden_layers=80",
        "num_attention_heads=64",
        "num_key_value_heads=8",
        "intermediate_size=28672",
        "vocab_size=128256",
        "max_position_embeddings=8192",
    ],
    "7b": [
        "hidden_size=4096",
        "num_hidden_layers=32",
        "num_attention_heads=32",
        "num_key_value_heads=32",
        "intermediate_size=11008",
        "vocab_size=32000",
        "max_position_embeddings=4096",
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="70b")
    shape = parser.parse_args().shape
    start = time.perf_counter()
    import fxviz
    from fxviz.drawing import DrawOptions, picture, to_dot

    imported = time.perf_counter()
    loaded = fxviz.load("hf:llama", config=SHAPES[shape])
    built = time.perf_counter()
    graph = fxviz.trace(loaded)
    traced = time.perf_counter()
    dot = to_dot(graph)
    done = time.perf_counter()
    drawn = picture(graph, DrawOptions())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"llama {shape}: {graph.totals.params.total / 1e9:.1f}B params (all on {graph.device}); "
        f"tracer: {graph.tracer}"
    )
    print(f"nodes: {len(graph.nodes)} traced, {len(drawn.nodes)} drawn; DOT {len(dot) // 1024} KB")
    print(
        f"time: import {imported - start:.1f}s, build {built - imported:.1f}s, "
        f"trace {traced - built:.1f}s, views+DOT {done - traced:.1f}s, total {done - start:.1f}s"
    )
    print(f"peak RSS: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
