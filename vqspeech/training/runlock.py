"""One writer per run directory: an exclusive ``fcntl.flock`` on ``RUN/.lock``, held for the whole process.

``train`` and ``train-prior`` (the Trainer, on rank 0 only) take it; readers (convert, report, the
evaluations) take none, and rely on checkpoints being replaced by an atomic rename. The lock file holds the
holder's pid and host, so a refused second process can say who has the run. flock belongs to the open file,
so the kernel drops it when its holder dies, even by SIGKILL: a stale lock file never blocks anyone.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

from vqspeech.errors import UserError

LOCK_NAME = ".lock"


class RunLock:
    """The exclusive lock on one run directory. :meth:`acquire` takes it or raises a one-line UserError;
    :meth:`release` (or the end of the process) gives it back. Usable as a context manager."""

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        import fcntl

        if self.held:
            return self
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(self.run_dir))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise UserError(f"{self.run_dir} is in use by {holder(self.path)}; wait for that run to end (or stop "
                            f"it), or choose another run_dir=...") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} host {socket.gethostname()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock back. The file stays: deleting it would let two processes lock two different files."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def holder(path: str | os.PathLike) -> str:
    """'pid 123 on host h' as the lock file says, or 'another process' when it cannot be read."""
    try:
        words = Path(path).read_text().split()
        fields = dict(zip(words[::2], words[1::2]))
        return f"pid {fields['pid']} on host {fields['host']}"
    except (OSError, KeyError, UnicodeDecodeError):
        return "another process"
