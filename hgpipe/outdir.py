"""Where results go: checked before any work, published whole or not at all.

An output directory is new, empty, or an earlier hgpipe result, recognised by the manifest
hgpipe writes into it (``.hgpipe-manifest.json``: every file of the result). Anything
else is refused before the run starts, unless ``--force`` says to replace it whole. A run
builds its result in a hidden sibling directory and renames it into place; an earlier
result is moved aside first and deleted after, so readers see the old result or the new
one, never a mix, and nothing stale survives. A single output file (``run --out``) is
written beside its destination and renamed over it the same way; an existing file there
is replaced only if it is what that command writes (an ``.npy`` array of logits).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import HgpipeError

MANIFEST = ".hgpipe-manifest.json"
_HIDDEN = ".hgpipe-"     # prefix of the sibling directories a run works in
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class OutputError(HgpipeError):
    """The output path cannot take the result."""


def _writable_ancestor(p: Path, what: str, raw: str) -> Path:
    """The nearest existing ancestor of ``p``, after checking that a directory can be
    created in it (the only test that holds for read-only mounts, /proc and the like)."""
    a = p.parent
    while not a.exists():
        if a == a.parent:
            break
        a = a.parent
    if not a.is_dir():
        raise OutputError(f"{what}: {raw!r}: {str(a)!r} is not a directory")
    try:
        probe = tempfile.mkdtemp(dir=a, prefix=_HIDDEN + "probe-")
    except OSError as exc:
        raise OutputError(f"{what}: {raw!r}: cannot write in {str(a)!r} "
                          f"({exc.strerror or exc})") from None
    os.rmdir(probe)
    return a


def _absolute(raw: str, what: str) -> Path:
    if not isinstance(raw, str) or not raw.strip():
        raise OutputError(f"{what}: {raw!r}: expected a path")
    if "\0" in raw:
        raise OutputError(f"{what}: {raw!r}: expected a path without NUL characters")
    return Path(os.path.normpath(os.path.abspath(raw)))


def _contents(d: Path) -> set[str]:
    """Every file and directory below ``d``, as relative POSIX paths (links not followed)."""
    out = set()
    for root, dirs, files in os.walk(d):
        rel = Path(root).relative_to(d)
        for n in dirs + files:
            out.add((rel / n).as_posix())
    return out


def _manifest_files(d: Path) -> set[str] | None:
    """The files an earlier result's manifest lists (and their directories), or None."""
    try:
        data = json.loads((d / MANIFEST).read_text())
        files = data["files"]
        if data.get("tool") != "hgpipe" or not all(isinstance(f, str) for f in files):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    listed = {MANIFEST}
    for f in files:
        parts = Path(f).parts
        listed.update(Path(*parts[:k]).as_posix() for k in range(1, len(parts) + 1))
    return listed


class OutDir:
    """The directory a command's result goes to. ``OutDir(path, force)`` checks it (call
    it before any work); ``publish(fill)`` has ``fill(tmp)`` write the result into a
    fresh directory and puts that in place."""

    def __init__(self, raw: str, force: bool = False, what: str = "out"):
        self.raw, self.force, self.what = raw, force, what
        self.path = _absolute(raw, what)
        self.check()

    def check(self) -> None:
        p, raw, what = self.path, self.raw, self.what
        if p == Path(p.anchor) or os.path.ismount(p):
            raise OutputError(f"{what}: {raw!r}: is a file-system root or mount point; "
                              "expected a directory below it")
        cwd = Path.cwd()
        if p == cwd or p in cwd.parents:
            raise OutputError(f"{what}: {raw!r}: is the working directory or above it; "
                              "expected a directory of its own")
        if p.is_symlink():
            raise OutputError(f"{what}: {raw!r}: is a symbolic link; expected a "
                              "directory")
        if p.exists() and not p.is_dir():
            raise OutputError(f"{what}: {raw!r}: exists and is not a directory")
        _writable_ancestor(p, what, raw)
        if p.is_dir() and not self.force:
            try:
                present = _contents(p)
            except OSError as exc:
                raise OutputError(f"{what}: {raw!r}: cannot read it ({exc.strerror})"
                                  ) from None
            listed = _manifest_files(p) if present else set()
            foreign = sorted(present - (listed or set()))
            if foreign:
                kind = "an earlier hgpipe result with files it did not write" \
                    if listed else "a directory hgpipe did not write"
                raise OutputError(
                    f"{what}: {raw!r}: is {kind} (e.g. {foreign[0]!r}); expected a new "
                    "or empty directory or an earlier hgpipe result (--force replaces it "
                    "whole)")

    def publish(self, fill: Callable[[Path], None]) -> list[Path]:
        """Write the result into a sibling directory with ``fill``, add the manifest, and
        rename it into place; the earlier result (if any) is removed whole. Returns the
        result's top-level entries."""
        p = self.path
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=p.parent, prefix=f"{_HIDDEN}{p.name}-"))
        old = None
        try:
            os.chmod(tmp, 0o777 & ~_umask())     # as mkdir would make it, not mkdtemp's 0700
            fill(tmp)
            files = sorted(f for f in _contents(tmp) if (tmp / f).is_file())
            (tmp / MANIFEST).write_text(json.dumps({"tool": "hgpipe", "files": files},
                                                   indent=1) + "\n")
            top = sorted(x.name for x in tmp.iterdir() if x.name != MANIFEST)
            with _signals_held():
                self.check()    # the directory may have changed during the run
                if p.exists():
                    old = Path(tempfile.mkdtemp(dir=p.parent, prefix=f"{_HIDDEN}old-"))
                    os.rename(p, old / "d")
                try:
                    os.rename(tmp, p)
                except OSError:
                    if old is not None:
                        os.rename(old / "d", p)
                    raise
            return [p / n for n in top]
        except OSError as exc:
            raise OutputError(f"{self.what}: {self.raw!r}: cannot write the result "
                              f"({exc.strerror or exc})") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)


class OutFile:
    """A single output file (``run --out``): checked before any work, then written beside
    itself and renamed over. An existing file is replaced only if ``replaceable(path)``
    says it is one this command writes, or with ``force``."""

    def __init__(self, raw: str, replaceable: Callable[[Path], bool], force: bool = False,
                 what: str = "out"):
        self.raw, self.what = raw, what
        self.path = p = _absolute(raw, what)
        if p.is_dir():
            raise OutputError(f"{what}: {raw!r}: is a directory; expected a file path")
        if p.is_symlink():
            raise OutputError(f"{what}: {raw!r}: is a symbolic link; expected a file "
                              "path")
        if p.exists() and not force and not replaceable(p):
            raise OutputError(f"{what}: {raw!r}: exists and is not a file hgpipe "
                              "writes; expected a new path (--force replaces it)")
        _writable_ancestor(p, what, raw)

    def write(self, save: Callable[[object], None]) -> Path:
        p = self.path
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f"{_HIDDEN}{p.name}-")
        except OSError as exc:
            raise OutputError(f"{self.what}: {self.raw!r}: cannot write "
                              f"({exc.strerror or exc})") from None
        try:
            os.chmod(tmp, 0o666 & ~_umask())     # as open would make it, not mkstemp's 0600
            with os.fdopen(fd, "wb") as f:
                save(f)
            with _signals_held():
                os.replace(tmp, p)
        except OSError as exc:
            raise OutputError(f"{self.what}: {self.raw!r}: cannot write "
                              f"({exc.strerror or exc})") from None
        finally:
            Path(tmp).unlink(missing_ok=True)
        return p


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def is_logits(p: Path) -> bool:
    """A file ``run`` writes: an ``.npy`` of float32 logits, (images, classes)."""
    try:
        a = np.load(p, mmap_mode="r", allow_pickle=False)
    except Exception:
        return False
    return isinstance(a, np.ndarray) and a.dtype == np.float32 and a.ndim == 2


class _signals_held:
    """Hold SIGINT, SIGTERM and SIGHUP while the result is put in place: a signal then
    arrives after the rename (or its undo), never between the two renames."""

    def __enter__(self):
        self.old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)

    def __exit__(self, *exc):
        signal.pthread_sigmask(signal.SIG_SETMASK, self.old)
        return False
