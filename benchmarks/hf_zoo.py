"""Every causal-LM model type transformers lists, drawn as a new user would draw it: one
`fxviz hf:TYPE --layers 2 -o x.svg` process each, on meta, from the type's default config.

    python benchmarks/hf_zoo.py                  # every type, 2 at a time
    python benchmarks/hf_zoo.py llama gemma3     # some types
    python benchmarks/hf_zoo.py --layers 0       # no --layers: the default configs as they are

Prints one line per type (drew, a one-line error, a traceback, killed or too slow, with its
peak memory) and then the counts, and the errors grouped by their first words. A traceback,
a kill or a process over 2 GiB is a bug; an error is fxviz saying what it cannot draw.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

TIMEOUT_S = 300
LIMIT_GIB = 2.0


@dataclass(frozen=True)
class Outcome:
    model_type: str
    kind: str  # drew, error, traceback, killed, timeout
    seconds: float
    peak_gib: float
    text: str


def causal_lm_types() -> list[str]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)


def draw(model_type: str, layers: int, folder: Path) -> Outcome:
    fxviz = Path(sys.executable).with_name("fxviz")
    command = [str(fxviz), f"hf:{model_type}", "-o", str(folder / f"{model_type}.svg"), "-q"]
    if layers:
        command += ["--layers", str(layers)]
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        child = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"}
        )
        timer = threading.Timer(TIMEOUT_S, child.kill)
        timer.start()
        _, status, usage = os.wait4(child.pid, 0)  # the child's own peak memory, too
        timer.cancel()
        child.returncode = code = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        log.seek(0)
        text = log.read().decode(errors="replace").strip()
    peak = usage.ru_maxrss / 1024 / 1024  # KiB -> GiB
    last = text.splitlines()[-1] if text else ""
    if code == 0:
        return Outcome(model_type, "drew", seconds, peak, "")
    if code < 0:
        kind = "timeout" if seconds >= TIMEOUT_S else "killed"
        return Outcome(model_type, kind, seconds, peak, f"signal {-code}")
    if code == 2 and "Traceback" not in text:
        return Outcome(model_type, "error", seconds, peak, last.removeprefix("error: "))
    return Outcome(model_type, "traceback", seconds, peak, last)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("types", nargs="*", help="model types (default: every causal-LM type)")
    parser.add_argument("--layers", type=int, default=2, help="--layers N (0: none)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    types = args.types or causal_lm_types()
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory() as folder, ThreadPoolExecutor(args.jobs) as pool:
        for outcome in pool.map(lambda t: draw(t, args.layers, Path(folder)), types):
            outcomes.append(outcome)
            over = " OVER 2 GiB" if outcome.peak_gib > LIMIT_GIB else ""
            print(
                f"{outcome.model_type}: {outcome.kind} in {outcome.seconds:.1f} s, "
                f"peak {outcome.peak_gib:.2f} GiB{over}  {outcome.text[:160]}",
                flush=True,
            )
    counts = Counter(o.kind for o in outcomes)
    print(f"\n{len(outcomes)} types: " + ", ".join(f"{n} {k}" for k, n in counts.most_common()))
    heavy = [o.model_type for o in outcomes if o.peak_gib > LIMIT_GIB]
    print(f"over {LIMIT_GIB} GiB: {', '.join(heavy) or 'none'}")
    reasons: dict[str, list[str]] = {}
    for o in outcomes:
        if o.kind != "drew":
            reasons.setdefault(_reason(o), []).append(o.model_type)
    for reason, names in sorted(reasons.items(), key=lambda r: -len(r[1])):
        print(f"  {len(names):3d}  {reason}: {', '.join(names)}")


def _reason(outcome: Outcome) -> str:
    """What kind of failure, without the type's own name: the groups RESULTS.md lists."""
    text = outcome.text
    if outcome.kind != "error":
        return outcome.kind
    if text.startswith("transformers could not build"):
        return "transformers could not build the default config or model"
    if text.startswith("no tracer can draw"):
        return "no tracer can draw it"
    return " ".join(text.replace(f"hf:{outcome.model_type}", "TYPE").split()[:4])


if __name__ == "__main__":
    main()
