"""Whole-process start-up: each fxviz command against the imports any tool must pay for it.

    python benchmarks/startup.py [--runs 5]

Each row times a whole `fxviz …` process and its floor (a bare `python -c "import …"` of
what drawing that model needs), the two alternating, `--runs` times each, and prints the
medians, fxviz's cost above its floor, the issue's budget for it, and which of torch,
torchvision and transformers the fxviz process imported.
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

PYTHON = sys.executable
FXVIZ = str(Path(PYTHON).parent / "fxviz")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}

# Runs fxviz's CLI in-process, then says which heavy packages that imported.
PROBE = (
    "import sys\nsys.argv = ['fxviz', *sys.argv[1:]]\nfrom fxviz.cli import main\n"
    "try:\n    main()\nexcept SystemExit:\n    pass\n"
    "print(','.join(m for m in ('torch', 'torchvision', 'transformers') if m in sys.modules)"
    " or '-', file=sys.stderr)"
)


def seconds(command: list[str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=ENV, check=True, capture_output=True)
    return time.perf_counter() - start


def imported(arguments: list[str], cwd: str) -> str:
    done = subprocess.run(
        [PYTHON, "-c", PROBE, *arguments], cwd=cwd, env=ENV, capture_output=True, text=True
    )
    return done.stderr.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([FXVIZ, "resnet18", "-o", "g.json", "-q"], cwd=tmp, env=ENV, check=True)
        rows = [
            # (fxviz arguments, floor imports, budget above the floor in seconds)
            (["resnet18", "-o", "x.svg", "-q"], "import torch, torchvision", 0.5),
            (
                ["hf:gpt2", "--layers", "2", "-o", "x.svg", "-q"],
                "import torch, transformers; transformers.GPT2Model",
                1.5,
            ),
            (["--help"], "", 0.3),
            (["render", "g.json", "-o", "x.svg", "-q"], "", None),
        ]
        print(f"medians of {runs} alternating whole processes; python {sys.version.split()[0]}")
        print()
        print("| command | fxviz | floor | above the floor | budget | imports |")
        print("|---|---|---|---|---|---|")
        for arguments, floor_code, budget in rows:
            fx_times, floor_times = [], []
            for _ in range(runs):
                fx_times.append(seconds([FXVIZ, *arguments], tmp))
                floor_times.append(seconds([PYTHON, "-c", floor_code or "pass"], tmp))
            fx, floor = statistics.median(fx_times), statistics.median(floor_times)
            floor_name = f"`{floor_code}`" if floor_code else "bare python"
            if budget is None:
                verdict = "–"
            elif floor_code:
                verdict = f"+{budget:.1f} s: {'met' if fx - floor <= budget else 'MISSED'}"
            else:
                verdict = f"{budget:.1f} s: {'met' if fx <= budget else 'MISSED'}"
            print(
                f"| `fxviz {' '.join(arguments)}` | {fx:.2f} s | {floor:.2f} s "
                f"({floor_name}) | {fx - floor:+.2f} s | {verdict} | "
                f"{imported(arguments, tmp)} |"
            )


if __name__ == "__main__":
    main()
