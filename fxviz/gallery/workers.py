"""Drawing entries in worker processes that may die: a crash, a hang or an out-of-memory in one
entry is that entry's failure, and the rest goes on.

Each worker is a spawned process (forking one whose torch thread pools run deadlocks) in its own
process group, so that killing it kills the `dot` it started too, and a Ctrl-C at the terminal
reaches only the gallery, which stops its workers itself. A worker imports torch once, then
draws one entry after another; the gallery gives it one entry at a time and watches three
things: its answer, its death (the exit status names the signal) and the entry's deadline.
A worker that died, hung or ran out of memory is replaced by a fresh one.

Memory is bounded per worker with the data-segment limit (RLIMIT_DATA: the heap and every
private writable mapping, what an allocation needs; not the address space, which torch's
libraries fill to ~3.5 GiB before anything is drawn). An allocation past it fails in that
process (MemoryError, torch's "can't allocate memory"), which is reported as `memory`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from typing import Any

from fxviz.errors import WorkerError
from fxviz.gallery.draw import Drawn, draw_entry, memory_cause, out_of_memory
from fxviz.gallery.manifest import Entry
from fxviz.humanize import format_bytes

DEFAULT_TIMEOUT = 600.0
# How long a fresh worker may take to start and import torch before the gallery gives up.
STARTUP_TIMEOUT = 300.0
# How often the gallery looks at the stop signals while it waits for its workers.
_POLL_S = 0.2


class StopSignals:
    """SIGINT and SIGTERM, while in effect, set `signum` instead of stopping the process, so a
    gallery stops between entries' files, never inside one; `exit_code` is the shell's 128 + N.
    Outside the main thread (where Python cannot take signals) it does nothing."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._caught)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _caught(self, signum: int, frame: object) -> None:
        self.signum = self.signum or signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    @property
    def exit_code(self) -> int:
        return 128 + self.signum if self.signum else 0

    @contextlib.contextmanager
    def deferred_sigint(self) -> Iterator[None]:
        """Ignore SIGINT while a worker is being started: the child inherits the ignoring and
        keeps it until it has its own process group, so a Ctrl-C then does not kill it mid-import.
        """
        if signal.SIGINT not in self._previous:
            yield
            return
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, self._caught)


@dataclass(frozen=True, slots=True)
class Bounds:
    """How long an entry may take and how much memory its worker may hold; an entry's own
    `timeout` and `max_memory` (manifest keys) take precedence."""

    timeout: float | None = DEFAULT_TIMEOUT
    max_memory: int | None = None

    def of(self, entry: Entry) -> Bounds:
        return Bounds(
            entry.timeout if entry.timeout is not None else self.timeout,
            entry.max_memory if entry.max_memory is not None else self.max_memory,
        )


# ---- in the worker -------------------------------------------------------------------------


def _serve(conn: Connection, parent: int) -> None:
    """A worker's life: leave the terminal's process group, die with the gallery, import
    torch, then draw what it is sent until it is sent None."""
    if hasattr(os, "setpgrp"):
        os.setpgrp()
    _die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(ImportError):  # without torch, each entry says so itself
        import fxviz.tracing  # noqa: F401 (torch, once, before the first deadline starts)

    _no_process_locks()
    conn.send(("ready", None))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        entry, max_memory = job
        conn.send(("drawn", _draw_bounded(entry, max_memory)))


def _no_process_locks() -> None:
    """torch.fx's Interpreter makes a (disabled) tqdm bar, and tqdm's first bar makes a named
    semaphore for processes that share a terminal. A worker killed while it holds one leaves it
    to multiprocessing's resource tracker, which warns about a leak when the gallery ends. A
    worker shares no bars: a thread lock does."""
    try:
        from tqdm import tqdm  # type: ignore[import-untyped]
    except ImportError:
        return
    tqdm.set_lock(threading.RLock())


def _die_with(parent: int) -> None:
    """On Linux, ask the kernel to kill this worker when the gallery dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(1)


def _draw_bounded(entry: Entry, max_memory: int | None) -> Drawn:
    """draw_entry under the memory bound; any exception at all is this entry's failure."""
    held = _data_segment()
    start = time.perf_counter()
    try:
        with _memory_limit(max_memory):
            drawn = draw_entry(entry)
    except BaseException as exc:  # noqa: B036 (a model's sys.exit or KeyboardInterrupt too)
        seconds = time.perf_counter() - start
        detail = traceback.format_exc()
        if out_of_memory(exc):
            message = _memory_message(max_memory, held, memory_cause(exc))
            return Drawn(entry, error=message, seconds=seconds, outcome="memory", detail=detail)
        return Drawn(
            entry, error=_unexpected(exc), seconds=seconds, outcome="failed", detail=detail
        )
    if drawn.outcome == "memory":  # an FxvizError raised from a failed allocation
        return replace(drawn, error=_memory_message(max_memory, held, drawn.error))
    return drawn


def _memory_message(max_memory: int | None, held: int | None, cause: str) -> str:
    cause = f" ({cause})"
    if max_memory is None:
        return f"the machine ran out of memory drawing it{cause}; draw it on a bigger machine"
    before = f"; its process held {format_bytes(held)} before it began" if held else ""
    return (
        f"it needed more than the {format_bytes(max_memory)} that max_memory allows{cause}"
        f"{before}; raise max_memory = ... in its entry, or --max-memory"
    )


def _unexpected(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"the model called sys.exit({exc.code!r}) while it was drawn"
    return (
        f"{_first_line(exc)}: an error fxviz did not expect (run with --debug for the "
        "traceback, and report it)"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _data_segment() -> int | None:
    """What this process holds against RLIMIT_DATA (VmData), where the system says."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


@contextlib.contextmanager
def _memory_limit(limit: int | None) -> Iterator[None]:
    """RLIMIT_DATA's soft limit at `limit` for the duration (the hard limit is left alone, so
    it can be lifted again for the next entry)."""
    if limit is None:
        yield
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    bound = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (bound, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


# ---- in the gallery ------------------------------------------------------------------------


@dataclass(slots=True)
class _Worker:
    process: Any
    conn: Connection
    ready: bool = False
    born: float = field(default_factory=time.monotonic)
    entry: Entry | None = None
    started: float = 0.0
    deadline: float | None = None
    timeout: float | None = None
    oom_kills: int | None = None

    def give(self, entry: Entry, bounds: Bounds) -> None:
        self.conn.send((entry, bounds.max_memory))
        self.entry, self.started, self.timeout = entry, time.monotonic(), bounds.timeout
        self.deadline = self.started + bounds.timeout if bounds.timeout else None
        self.oom_kills = _oom_kills()

    def news(self) -> tuple[str, Any] | None:
        """Its answer ("ready" or "drawn"), ("died", exit code), or None while it works."""
        if self.conn.poll():
            try:
                message: tuple[str, Any] = self.conn.recv()
                return message
            except (EOFError, OSError):
                pass  # it died while it answered: its death, next
        if not self.process.is_alive():
            self.process.join(1)
            return "died", self.process.exitcode
        return None

    def kill(self) -> None:
        """SIGKILL the worker's whole process group (its `dot` too), and reap it."""
        pid = self.process.pid
        with contextlib.suppress(OSError):
            if hasattr(os, "killpg") and os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                self.process.kill()
        self.process.join(5)
        self.conn.close()

    def ask_to_leave(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)

    def leave(self) -> None:
        """Wait a few seconds for a worker asked to leave, then kill it if it has not."""
        self.process.join(5)
        if self.process.exitcode is None:
            self.kill()
        else:
            self.conn.close()


class _Pool:
    """`jobs` workers, each replaced by a fresh one when it dies, hangs or runs out of memory."""

    def __init__(self, jobs: int, stop: StopSignals) -> None:
        import multiprocessing

        self.context = multiprocessing.get_context("spawn")
        self.stop = stop
        self.workers = [self._start() for _ in range(jobs)]

    def _start(self) -> _Worker:
        ours, theirs = self.context.Pipe()
        process = self.context.Process(target=_serve, args=(theirs, os.getpid()), daemon=True)
        with self.stop.deferred_sigint():
            process.start()
        theirs.close()
        return _Worker(process, ours)

    def replace(self, worker: _Worker) -> None:
        worker.kill()
        self.workers[self.workers.index(worker)] = self._start()

    def idle(self) -> list[_Worker]:
        return [w for w in self.workers if w.ready and w.entry is None]

    def busy(self) -> bool:
        return any(w.entry is not None for w in self.workers)

    def wait(self) -> None:
        """Until a worker has news, a deadline passes, or a stop signal may have come."""
        now = time.monotonic()
        deadlines = [w.deadline - now for w in self.workers if w.deadline and w.entry]
        handles = [x for w in self.workers for x in (w.conn, w.process.sentinel)]
        wait(handles, max(0.0, min([_POLL_S, *deadlines])))

    def close(self) -> None:
        """Kill the busy workers (or all, when stopped); the idle ones leave, all at once."""
        leaving = []
        for worker in self.workers:
            if self.stop.signum or worker.entry is not None:
                worker.kill()
            else:
                worker.ask_to_leave()
                leaving.append(worker)
        for worker in leaving:
            worker.leave()


def draw_isolated(
    entries: Sequence[Entry],
    jobs: int,
    on_done: Callable[[Drawn], None] | None,
    bounds: Bounds,
    stop: StopSignals,
) -> dict[str, Drawn]:
    """Draw `entries` in `jobs` worker processes; what each became, by name. The entries not
    drawn when a stop signal came are left out (the caller says so)."""
    pending = deque(entries)
    results: dict[str, Drawn] = {}
    pool = _Pool(max(1, min(jobs, len(entries))), stop)

    def give_out() -> None:
        for worker in pool.idle():
            if pending:
                entry = pending.popleft()
                worker.give(entry, bounds.of(entry))

    try:
        while (pending or pool.busy()) and not stop.signum:
            give_out()
            pool.wait()
            finished = []
            for worker in list(pool.workers):
                drawn = _outcome(worker, pool)
                if drawn is None:
                    continue
                results[drawn.entry.name] = drawn
                worker.entry = None
                if drawn.outcome in ("crash", "hang", "memory"):  # a fresh process for the next
                    pool.replace(worker)
                finished.append(drawn)
            give_out()  # before the files are written: no worker waits for the disk
            for drawn in finished:
                if on_done:
                    on_done(drawn)
    finally:
        pool.close()
    return results


def _outcome(worker: _Worker, pool: _Pool) -> Drawn | None:
    """What a worker's news means: an entry drawn, failed, crashed or hung, or nothing yet."""
    news = worker.news()
    now = time.monotonic()
    if news is None:
        if worker.entry is not None and worker.deadline and now >= worker.deadline:
            message = (
                f"no answer in {worker.timeout:g} s; raise timeout = ... in its entry (or "
                "--timeout) if it only needs longer"
            )
            return Drawn(worker.entry, error=message, seconds=now - worker.started, outcome="hang")
        if not worker.ready and now - worker.born > STARTUP_TIMEOUT:
            raise WorkerError(f"a worker process did not start in {STARTUP_TIMEOUT:g} s")
        return None
    kind, payload = news
    if kind == "ready":
        worker.ready = True
        return None
    if kind == "drawn":
        drawn: Drawn = payload
        return drawn
    if worker.entry is None:  # it died with nothing to draw
        if not worker.ready:
            raise WorkerError(
                f"{_death(payload, starting=True)}; try `fxviz gallery` with --jobs 1, or draw "
                "one entry with `fxviz MODEL --debug`"
            )
        pool.replace(worker)
        return None
    outcome, message = _death_of(worker)
    return Drawn(worker.entry, error=message, seconds=now - worker.started, outcome=outcome)


def _death_of(worker: _Worker) -> tuple[str, str]:
    """How a worker died drawing an entry, in words: the outcome and the message."""
    code = worker.process.exitcode
    if code == -signal.SIGKILL:
        before, after = worker.oom_kills, _oom_kills()
        if before is not None and after is not None and after > before:
            return "memory", (
                "the process drawing it was killed for memory by the kernel's out-of-memory "
                "killer; bound each entry with max_memory = ... (or --max-memory)"
            )
    return "crash", _death(code)


def _death(code: int | None, starting: bool = False) -> str:
    what = "a worker process, starting," if starting else "the process drawing it"
    if code is None:
        return f"{what} stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if -code == signal.SIGKILL:
            return (
                f"{what} was killed with SIGKILL (signal 9) by something outside fxviz, as the "
                "kernel's out-of-memory killer does; max_memory = ... (or --max-memory) bounds it"
            )
        return f"{what} died with {name} (signal {-code})"
    return f"{what} exited with status {code} before it answered"


def _oom_kills() -> int | None:
    """The kernel's count of out-of-memory kills in this process's cgroup (cgroup v2), where
    readable: a SIGKILL while it rose was the OOM killer's."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as handle:
            path = next(line.split(":", 2)[2].strip() for line in handle if line.startswith("0::"))
        with open(f"/sys/fs/cgroup{path}/memory.events", encoding="utf-8") as events:
            for line in events:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except (OSError, StopIteration, ValueError):
        pass
    return None


def draw_all(
    entries: Sequence[Entry],
    jobs: int = 1,
    on_done: Callable[[Drawn], None] | None = None,
    *,
    bounds: Bounds = Bounds(),
    stop: StopSignals | None = None,
) -> list[Drawn]:
    """Draw every entry in `jobs` worker processes; results keep the manifest's order. With
    `stop` (entered by the caller) a SIGINT or SIGTERM ends the run between entries: those not
    drawn are `interrupted`, and `stop.signum` says which signal. Without it, the signal is
    raised again once the workers are gone (KeyboardInterrupt, or SystemExit(143))."""
    own = stop is None
    with contextlib.ExitStack() as stack:
        signals = stop if stop is not None else stack.enter_context(StopSignals())
        done = draw_isolated(entries, jobs, on_done, bounds, signals) if entries else {}
    why = f"not drawn: the run was stopped ({signals.name}) before it was drawn"
    drawn = [done.get(e.name) or Drawn(e, error=why, outcome="interrupted") for e in entries]
    if own and signals.signum == signal.SIGINT:
        raise KeyboardInterrupt
    if own and signals.signum:
        raise SystemExit(signals.exit_code)
    return drawn
