"""The picture census: every torchvision model and 90 Hugging Face types of every kind, drawn
by one `fxviz gallery` run at their defaults (`--layers 2` for Hugging Face), and each default
picture judged as a reader meets it (fxviz/gallery/quality.py): dead ends, tracer-made names,
labels that stutter, its size in px at 96 dpi against a screen (2,500 on the shorter side,
20,000 on the longer), its boxes, and how fxviz made it fit.

    python benchmarks/pictures.py                 # all of it (about 25 minutes on 2 cores)
    python benchmarks/pictures.py --only hf       # the Hugging Face types alone
    python benchmarks/pictures.py resnet18 hf_sam # some entries, by name
    pytest -m zoo tests/test_census.py            # the same, as a test

Prints a Markdown table for benchmarks/RESULTS.md (the pictures that are not clean, then the
counts), and writes the pictures and the whole table to --out (a temporary folder by default).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fxviz.gallery.quality import Verdict, judge
from fxviz.graph import Graph

# Hugging Face model types by kind, drawn from each type's default config.
HF_TYPES: dict[str, tuple[str, ...]] = {
    "encoder": (
        "bert", "roberta", "albert", "distilbert", "electra", "deberta", "deberta-v2",
        "xlm-roberta", "mpnet", "convbert", "big_bird", "longformer", "megatron-bert",
        "squeezebert", "roformer", "funnel",
    ),
    "decoder": (
        "gpt2", "gpt_neo", "gpt_neox", "gptj", "llama", "mistral", "qwen2", "qwen3", "gemma",
        "gemma2", "phi", "phi3", "opt", "bloom", "falcon", "stablelm", "starcoder2", "olmo",
        "codegen",
    ),
    "mixture of experts": ("mixtral", "qwen2_moe", "granitemoe", "switch_transformers", "dbrx"),
    "state space": ("mamba", "mamba2", "jamba", "rwkv"),
    "encoder-decoder": (
        "t5", "bart", "mbart", "pegasus", "led", "marian", "mt5", "blenderbot", "m2m_100",
    ),
    "speech": (
        "whisper", "wav2vec2", "hubert", "wavlm", "speech_to_text", "sew", "data2vec-audio",
    ),
    "vision": (
        "vit", "deit", "beit", "swin", "swinv2", "convnext", "convnextv2", "resnet", "regnet",
        "mobilevit", "mobilenet_v2", "efficientnet", "dinov2", "segformer", "yolos", "detr",
        "levit", "poolformer", "cvt", "sam",
    ),
    "vision-language": (
        "clip", "siglip", "owlvit", "blip", "vilt", "align", "chinese_clip", "groupvit", "git",
    ),
}  # fmt: skip

# Types this machine cannot build at all (transformers or timm fail before fxviz runs), with
# the reason: the census reports them apart from pictures fxviz drew badly.
CANNOT_BUILD = {
    "hf_funnel": "transformers 5 cannot build FunnelConfig's default model",
    "hf_detr": "DETR's backbone needs timm's pretrained ResNet-50 (a download)",
    "hf_dbrx": "transformers 5's DbrxConfig lacks the rope_theta its model reads",
}


@dataclass(frozen=True)
class Entry:
    name: str
    spec: str
    layers: int | None
    kind: str


def entries() -> list[Entry]:
    import torchvision

    found = [Entry(n, n, None, "torchvision") for n in sorted(torchvision.models.list_models())]
    for kind, types in HF_TYPES.items():
        found += [Entry(f"hf_{t.replace('-', '_')}", f"hf:{t}", 2, kind) for t in types]
    return found


def manifest(folder: Path, chosen: list[Entry]) -> Path:
    text = '[defaults]\nformats = ["svg", "json"]\n'
    for e in chosen:
        text += f'\n[[model]]\nname = "{e.name}"\nspec = "{e.spec}"\n'
        if e.layers is not None:
            text += f"layers = {e.layers}\n"
    path = folder / "models.toml"
    path.write_text(text)
    return path


def draw(folder: Path, chosen: list[Entry], jobs: int) -> tuple[dict[str, str], float]:
    """One `fxviz gallery` run over every entry: (each failed entry's error, seconds)."""
    command = [sys.executable, "-m", "fxviz", "gallery", str(manifest(folder, chosen))]
    command += ["--out", str(folder), "--jobs", str(jobs), "-q"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    errors = {}
    for line in done.stderr.splitlines():
        if line.startswith("failed: "):
            name, _, rest = line.removeprefix("failed: ").partition(" ")
            errors[name] = rest.partition("): ")[2]
    if done.returncode not in (0, 1) or (done.returncode == 1 and not errors):
        sys.exit(f"fxviz gallery failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return errors, seconds


@dataclass(frozen=True)
class Row:
    entry: Entry
    verdict: Verdict | None
    error: str = ""


def judge_all(folder: Path, chosen: list[Entry], errors: dict[str, str]) -> list[Row]:
    rows = []
    for e in chosen:
        if e.name in errors:
            rows.append(Row(e, None, errors[e.name]))
            continue
        graph = Graph.load(folder / f"{e.name}.json")
        rows.append(Row(e, judge(e.name, graph, (folder / f"{e.name}.svg").read_bytes())))
    return rows


def problems(row: Row) -> list[str]:
    """What is wrong with one entry's default picture, in a few words each."""
    v = row.verdict
    if v is None:
        reason = CANNOT_BUILD.get(row.entry.name)
        error = row.error if len(row.error) <= 240 else row.error[:239] + "…"
        return [f"cannot be built here: {reason}" if reason else f"did not draw: {error}"]
    found = []
    if not v.fits:
        found.append("over a screen")
    for what, items in (
        ("dead ends", v.dead_ends),
        ("unnamed constants", v.unnamed),
        ("stutters", v.stutters),
    ):
        if items:
            found.append(f"{len(items)} {what} ({', '.join(items[:2])})")
    return found


def table(rows: list[Row], seconds: float) -> str:
    verdicts = [r.verdict for r in rows if r.verdict is not None]
    longest = [max(v.size_px) for v in verdicts]
    lines = [
        "| picture | kind | px (96 dpi) | boxes | how it fits | problems |",
        "|---|---|---|---:|---|---|",
    ]
    for r in rows:
        found, v = problems(r), r.verdict
        fitted = v.note.partition(" to fit")[0] if v is not None else ""
        if not found and not fitted:
            continue
        size = "–" if v is None else "{:,} × {:,}".format(*v.size_px)
        boxes = "–" if v is None else f"{v.boxes:,}"
        lines.append(
            f"| {r.entry.name} | {r.entry.kind} | {size} | {boxes} | {fitted or 'as drawn'} | "
            f"{'; '.join(found) or '–'} |"
        )
    clean = sum(1 for r in rows if not problems(r))
    over = sum(1 for v in verdicts if not v.fits)
    fitted_count = sum(1 for v in verdicts if v.note)
    hf = sum(1 for r in rows if r.entry.kind != "torchvision")
    median = statistics.median(longest) if longest else 0
    lines += [
        "",
        f"{len(rows)} entries ({len(rows) - hf} torchvision, {hf} Hugging Face types), drawn by "
        f"one `fxviz gallery` run in {seconds:.0f} s: {len(verdicts)} drew, {clean} clean; "
        f"{over} over 2,500 × 20,000 px; {fitted_count} fitted by fxviz (folded or drawn "
        f"shallower); median longer side {median:,.0f} px, largest {max(longest, default=0):,} px.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="entry names (resnet18, hf_sam); all if none")
    parser.add_argument("--only", choices=("torchvision", "hf"), help="one zoo alone")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, help="where the pictures go (default: a temp dir)")
    args = parser.parse_args()
    chosen = entries()
    if args.only:
        chosen = [e for e in chosen if (e.kind == "torchvision") == (args.only == "torchvision")]
    if args.names:
        chosen = [e for e in chosen if e.name in args.names]
    folder = args.out or Path(tempfile.mkdtemp(prefix="fxviz-census-"))
    folder.mkdir(parents=True, exist_ok=True)
    errors, seconds = draw(folder, chosen, args.jobs)
    text = table(judge_all(folder, chosen, errors), seconds)
    (folder / "census.md").write_text(text + "\n")
    print(text)
    print(f"\npictures and census.md in {folder}", file=sys.stderr)


if __name__ == "__main__":
    main()
