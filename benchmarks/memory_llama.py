"""The Llama-3-70B shape's memory report (README), bf16 AdamW with fp32 master weights on
meta: the whole `fxviz memory` process as a user runs it, measured from the model built
with 2, 3 and 4 layers (the default), against `--whole` (the 80-layer step run).

    python benchmarks/memory_llama.py [--runs 2]

Each run is a new process; the two ways alternate. Prints each way's wall time and peak RSS
(medians) and whether the two JSON reports (every count, every module's share) are the same
to the byte.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from llama_meta import SHAPES  # a script beside this one

COMMAND = ["memory", "hf:llama", "--train", "adamw", "--dtype", "bf16", "--master-weights"]


def run(extra: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in GiB, the JSON report) of one process."""
    fxviz = Path(sys.executable).with_name("fxviz")
    command = [str(fxviz), *COMMAND, "--format", "json", "-q", *extra]
    for item in SHAPES["70b"]:
        command += ["--config", item]
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=os.environ)
    assert child.stdout is not None
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        sys.exit(f"{' '.join(command)} exited {child.returncode}")
    return seconds, usage.ru_maxrss / 2**20, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    runs = parser.parse_args().runs
    found: dict[str, list[tuple[float, float, str]]] = {"scaled": [], "whole": []}
    for _ in range(runs):
        found["scaled"].append(run([]))
        found["whole"].append(run(["--whole"]))
    reports = {way: {r[2] for r in results} for way, results in found.items()}
    for way, results in found.items():
        seconds = statistics.median(r[0] for r in results)
        rss = statistics.median(r[1] for r in results)
        times = ", ".join(f"{r[0]:.1f}" for r in results)
        print(f"{way}: {seconds:.1f} s, peak RSS {rss:.2f} GiB (runs: {times} s)")
    same = len(reports["scaled"]) == len(reports["whole"]) == 1 and (
        reports["scaled"] == reports["whole"]
    )
    report = json.loads(next(iter(reports["scaled"])))
    print(f"peak {report['peak_bytes']:,} bytes, {report['peak_phase']}; reports identical: {same}")


if __name__ == "__main__":
    main()
