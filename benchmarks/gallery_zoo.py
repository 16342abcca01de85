"""A zoo-sized gallery: every torchvision model and a set of Hugging Face configs, drawn
(1) by one `fxviz gallery --jobs 2` run, (2) by one `fxviz` process per model, two at a time,
and (3) as 3 shards run one after the other, then merged.

    python benchmarks/gallery_zoo.py            # all of it (about 20 minutes on 2 cores)
    python benchmarks/gallery_zoo.py --limit 20 # the first 20 entries
    python benchmarks/gallery_zoo.py --no-per-process  # the gallery ways only (a before/after)

Prints a Markdown table for benchmarks/RESULTS.md: the wall time of each way, and for the
shards the slowest one (what a CI matrix waits for), the merge, and their sum.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HF = {
    "hf_bert": ("hf:bert", ["num_hidden_layers=2"]),
    "hf_gpt2": ("hf:gpt2", ["n_layer=2"]),
    "hf_t5": ("hf:t5", ["num_layers=2", "num_decoder_layers=2"]),
    "hf_vit": ("hf:vit", ["num_hidden_layers=2"]),
    "hf_llama": ("hf:llama", ["num_hidden_layers=2"]),
    "hf_whisper": ("hf:whisper", ["encoder_layers=2", "decoder_layers=2"]),
    "hf_clip": ("hf:clip", []),
    "hf_mistral": ("hf:mistral", ["num_hidden_layers=2"]),
}
FXVIZ = [sys.executable, "-m", "fxviz"]


def entries(limit: int | None) -> list[tuple[str, str, list[str]]]:
    import torchvision

    found = [(name, name, []) for name in sorted(torchvision.models.list_models())]
    found += [(name, spec, config) for name, (spec, config) in HF.items()]
    return found[:limit] if limit else found


def manifest(folder: Path, chosen: list[tuple[str, str, list[str]]]) -> Path:
    text = '[defaults]\nformats = ["svg", "json"]\n'
    for name, spec, config in chosen:
        text += f'\n[[model]]\nname = "{name}"\nspec = "{spec}"\n'
        if config:
            text += "config = [" + ", ".join(f'"{c}"' for c in config) + "]\n"
    path = folder / "models.toml"
    path.write_text(text)
    return path


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def per_process(folder: Path, chosen: list[tuple[str, str, list[str]]]) -> float:
    def draw(item: tuple[str, str, list[str]]) -> None:
        name, spec, config = item
        extra = [x for c in config for x in ("--config", c)]
        out = [str(folder / f"{name}.svg"), str(folder / f"{name}.json")]
        subprocess.run(
            [*FXVIZ, spec, *extra, "-q", "-o", out[0], "-o", out[1]],
            check=False,
            capture_output=True,
        )

    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(draw, chosen))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int)
    parser.add_argument("--no-per-process", action="store_true", help="skip way (2)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    chosen = entries(args.limit)
    work = Path(tempfile.mkdtemp(prefix="fxviz-zoo-"))
    try:
        path = manifest(work, chosen)
        one_run = timed([*FXVIZ, "gallery", str(path), "--out", str(work / "one"), "--jobs", "2"])
        (work / "each").mkdir()
        processes = 0.0 if args.no_per_process else per_process(work / "each", chosen)
        shard_times = [
            timed(
                [*FXVIZ, "gallery", str(path), "--out", str(work / f"s{i}"), "--shard", f"{i}/3"]
                + ["--jobs", "2"]
            )
            for i in (1, 2, 3)
        ]
        merge = [x for i in (1, 2, 3) for x in ("--merge", str(work / f"s{i}"))]
        merge_time = timed([*FXVIZ, "gallery", str(path), "--out", str(work / "merged"), *merge])
        same = all(
            (work / "one" / f.name).read_bytes() == f.read_bytes()
            for f in (work / "merged").iterdir()
        )
        counts = [len([*(work / f"s{i}").glob("*.json")]) - 1 for i in (1, 2, 3)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"{len(chosen)} entries on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print()
    print("| way | wall time |")
    print("|---|---|")
    print(f"| one `fxviz gallery --jobs 2` | {one_run:.0f} s |")
    if processes:
        print(f"| one `fxviz` process per model, 2 at a time | {processes:.0f} s |")
    print(
        f"| 3 shards (`--jobs 2` each), one after the other | {sum(shard_times):.0f} s "
        f"({' + '.join(f'{t:.0f}' for t in shard_times)}; entries {counts}) |"
    )
    print(
        f"| 3 shards in a CI matrix: the slowest, then the merge | "
        f"{max(shard_times) + merge_time:.0f} s ({max(shard_times):.0f} + {merge_time:.0f}) |"
    )
    print()
    print(f"merged shards byte-identical to the one run: {same}")


if __name__ == "__main__":
    main()
