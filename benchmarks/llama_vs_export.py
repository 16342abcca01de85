"""The Llama-3-70B shape: a whole `fxviz … -o x.svg` process against a bare torch.export.

    python benchmarks/llama_vs_export.py [--runs 5] [--shape 70b|7b]

Both processes build the same model on meta from the same config (no weights allocated) and
trace it with the same inputs (`input_ids` and `attention_mask`, 1×16): fxviz draws it to an
SVG, the bare one only runs `torch.export.export(model, (), inputs, strict=False)`. They
alternate, `--runs` times each; the medians of wall time and of peak memory (the process's
maximum resident set, from `wait4`) are printed with their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from llama_meta import SHAPES  # noqa: E402

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
FXVIZ = str(Path(sys.executable).parent / "fxviz")

BARE_EXPORT = """
import sys, torch, transformers
config = transformers.AutoConfig.for_model("llama")
for item in sys.argv[1:]:
    key, value = item.split("=")
    setattr(config, key, int(value))
config.use_cache = False
with torch.device("meta"):
    model = transformers.AutoModel.from_config(config).eval()
inputs = {
    "input_ids": torch.zeros(1, 16, dtype=torch.int64, device="meta"),
    "attention_mask": torch.ones(1, 16, dtype=torch.int64, device="meta"),
}
torch.export.export(model, (), inputs, strict=False)
"""


def run(command: list[str], cwd: str) -> tuple[float, float]:
    """(wall seconds, peak resident GiB) of one whole process."""
    start = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        assert process.stderr is not None
        raise SystemExit(f"{command[:2]} failed: {process.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="70b")
    args = parser.parse_args()
    config = SHAPES[args.shape]
    overrides = [arg for item in config for arg in ("--config", item)]
    fxviz_command = [FXVIZ, "hf:llama", *overrides, "-o", "x.svg", "-q"]
    export_command = [sys.executable, "-c", BARE_EXPORT, *config]
    times: dict[str, list[float]] = {"fxviz": [], "export": []}
    peaks: dict[str, list[float]] = {"fxviz": [], "export": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            for name, command in (("fxviz", fxviz_command), ("export", export_command)):
                seconds, peak = run(command, tmp)
                times[name].append(seconds)
                peaks[name].append(peak)
    fx, ex = statistics.median(times["fxviz"]), statistics.median(times["export"])
    print(f"Llama {args.shape} shape on meta, medians of {args.runs} alternating processes")
    print()
    print("| process | wall time | peak memory |")
    print("|---|---|---|")
    print(
        f"| `fxviz hf:llama --config … -o x.svg` | {fx:.1f} s | "
        f"{statistics.median(peaks['fxviz']):.2f} GiB |"
    )
    print(
        f"| bare `torch.export.export(model, …, strict=False)` | {ex:.1f} s | "
        f"{statistics.median(peaks['export']):.2f} GiB |"
    )
    print()
    print(f"fxviz / bare export: {fx / ex:.2f} of the wall time")


if __name__ == "__main__":
    main()
