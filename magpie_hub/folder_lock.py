"""One writer per build folder: an exclusive `flock` on the folder itself.

The lock is taken on the directory's own file descriptor, so it writes nothing into the
folder (a refused command leaves it byte-identical) and the kernel drops it when the
holder dies, `kill -9` included. Within one process it is re-entrant (`publish` runs
generate and curate under its own hold). The holder's PID is read from /proc/locks.
A holder that has ended while its forked workers still hold the descriptor is waited
for a few seconds: they exit on their own (see `running.die_with_parent`).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from magpie_hub.errors import BuildFolderError, BuildLockedError

ORPHAN_GRACE_SECONDS = 10.0
"""How long to wait for the workers of a writer that has ended to let go."""

_held: dict[tuple[int, int], list[int]] = {}
"""(st_dev, st_ino) -> [descriptor, depth] of the locks this process holds."""


@contextmanager
def hold(root: Path) -> Iterator[None]:
    """Hold `root`'s writer lock for the block (the folder is created if missing)."""
    if root.exists() and not root.is_dir():
        raise BuildFolderError(
            root, "is a file, not a folder", hint="Pass a folder (new or a build) as --out."
        )
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    st = root.stat()
    key = (st.st_dev, st.st_ino)
    if key in _held:
        _held[key][1] += 1
    else:
        _held[key] = [_acquire(root), 1]
    try:
        yield
    finally:
        _held[key][1] -= 1
        if _held[key][1] == 0:
            os.close(_held.pop(key)[0])  # closing the descriptor releases the flock
            if created and root.exists() and not any(root.iterdir()):
                root.rmdir()  # nothing was written: leave no trace


def _acquire(root: Path) -> int:
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    deadline = None
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pid = holder_pid(root)
            alive = pid is not None and _alive(pid)
            if alive or pid is None:
                os.close(fd)
                raise BuildLockedError(root, pid) from None
            deadline = deadline or time.monotonic() + ORPHAN_GRACE_SECONDS
            if time.monotonic() > deadline:
                os.close(fd)
                raise BuildLockedError(root, pid, holder_alive=False) from None
            time.sleep(0.2)


def holder_pid(root: Path) -> int | None:
    """The PID that took the flock on `root`, from /proc/locks (None if not found)."""
    st = root.stat()
    want = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF" (a "->" marks a waiter)
        if "FLOCK" in parts and "->" not in parts and want in parts:
            pid = parts[parts.index(want) - 1]
            return int(pid) if pid.isdigit() else None
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has ended; its parent has not reaped it yet
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True
