"""Model files as they were at a git revision: `HEAD~1:net.py:Net`, `main:models/net.py:Net`.

The file and the other files of its folder (what it imports beside it) are read with
`git show` into a folder of their own, one per revision; the work tree and the index are never
touched. Every failure is a SpecError saying what to type instead.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

from fxviz.errors import SpecError

# The most a revision's folder may hold: a model's folder, not a checkout of the repository.
MAX_FILES = 2_000
MAX_BYTES = 64 << 20


def file_at_revision(revision: str, path: str) -> Path:
    """A copy of `path` (relative to the current folder, or absolute) as it was at
    `revision`, with its folder's files beside it."""
    where = Path(path)
    folder = (where.parent if where.is_absolute() else Path.cwd() / where.parent).resolve()
    start = folder if folder.is_dir() else Path.cwd()
    root = Path(
        _git(
            ["rev-parse", "--show-toplevel"],
            start,
            f"{start} is not in a git repository; a REV:path spec reads a file from git",
        )
    ).resolve()
    commit = _git(
        ["rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
        root,
        f"unknown git revision {revision!r} in {root}; `git log --oneline` lists them",
    )
    try:
        inside = (folder / where.name).relative_to(root).as_posix()
    except ValueError:
        raise SpecError(f"{path} is outside the git repository at {root}") from None
    listed = _git(["ls-tree", "-r", "--name-only", commit, "--", inside], root, "")
    if inside not in listed.splitlines():
        raise SpecError(
            f"{inside} is not in {revision} ({commit[:10]}); `git show {revision} --stat` "
            "lists what that revision holds"
        )
    return _copied(root, commit, inside)


@cache
def _copied(root: Path, commit: str, inside: str) -> Path:
    """The revision's files of `inside`'s folder, in a folder of the commit's own."""
    folder = inside.rpartition("/")[0]
    names = _git(["ls-tree", "-r", "--name-only", commit, "--", folder or "."], root, "")
    files = [n for n in names.splitlines() if n]
    if len(files) > MAX_FILES:
        files = [n for n in files if n.endswith(".py")][:MAX_FILES]
    target = Path(tempfile.mkdtemp(prefix=f"fxviz-{commit[:10]}-"))
    atexit.register(shutil.rmtree, target, True)
    total = 0
    for name in files:
        data = _git_bytes(["show", f"{commit}:{name}"], root)
        total += len(data)
        if total > MAX_BYTES and name != inside:
            continue
        copy = target / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(data)
    return target / inside


def _git(args: list[str], cwd: Path, failure: str) -> str:
    return _git_bytes(args, cwd, failure).decode("utf-8", "replace").strip()


def _git_bytes(args: list[str], cwd: Path, failure: str = "") -> bytes:
    git = shutil.which("git")
    if git is None:
        raise SpecError("a REV:path spec reads the file from git, and git is not on PATH")
    done = subprocess.run([git, *args], cwd=cwd, capture_output=True, check=False, timeout=120)
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise SpecError(failure or f"git {args[0]} failed: {said[0] if said else done.returncode}")
    return done.stdout
