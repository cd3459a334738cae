"""SIGINT, SIGTERM and SIGHUP end a run cleanly: every process it started is stopped, its
temporary files go with the ``finally`` blocks that own them, and the command exits with
one line and 128 + the signal's number (130, 143, 129).

The run's processes (the Verilog conversion pool, the simulator's make and compilers, Yosys
workers) are found as the descendants of this process in ``/proc`` and stopped by the
handler itself, before it raises ``Interrupted``: a pool's shutdown then has nothing left
to wait for.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(BaseException):
    """A signal ended the run (a BaseException: no ``except Exception`` swallows it)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def descendants(pid: int | None = None) -> list[int]:
    """Every live process below ``pid`` (default: this one), children first."""
    pid = os.getpid() if pid is None else pid
    parent: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for e in entries:
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()   # after the command name
        parent.setdefault(int(fields[1]), []).append(int(e))
    out, todo = [], list(parent.get(pid, []))
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo.extend(parent.get(p, []))
    return out


def stop_descendants(grace: float = 2.0) -> None:
    """SIGTERM every descendant, the deepest first (a process stopped before its children
    would leave them to init), again for any that appear meanwhile; SIGKILL what is still
    there after ``grace`` s."""
    end, seen = time.monotonic() + grace, set()
    while True:
        procs = descendants()
        for p in reversed(procs):
            if p not in seen:
                seen.add(p)
                with contextlib.suppress(OSError):
                    os.kill(p, signal.SIGTERM)
        # zombies count as gone: their parents reap them
        if not [p for p in procs if _alive(p)] or time.monotonic() >= end:
            break
        time.sleep(0.05)
    for p in reversed(descendants()):
        with contextlib.suppress(OSError):
            os.kill(p, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().decode(errors="replace")
    except OSError:
        return False
    return state[state.rfind(")") + 2:][:1] not in ("Z", "X")


@contextlib.contextmanager
def run_temp():
    """A temporary directory for the run, the default of ``tempfile`` here and (through
    ``TMPDIR``) in every process it starts, removed when the run ends however it ends: a
    worker stopped in native code (Yosys under wasmtime) leaves nothing behind."""
    root = tempfile.mkdtemp(prefix="hgpipe-run-")
    old_env, old_default = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"], tempfile.tempdir = root, root
    try:
        yield root
    finally:
        tempfile.tempdir = old_default
        if old_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old_env
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def handled():
    """Within the block, the three signals stop the run's processes and raise
    ``Interrupted`` (once; later signals during the cleanup are ignored)."""
    fired, main = [], os.getpid()

    def handler(signum, frame):
        if fired:
            return
        fired.append(signum)
        stop_descendants()
        if os.getpid() != main:     # a forked worker: gone at once, not on to its next job
            os._exit(128 + signum)
        raise Interrupted(signum)

    old = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
