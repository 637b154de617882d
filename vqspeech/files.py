"""Writing files whole or not at all, the one place for it: a temp file beside the target, the usual file
mode, then a rename. A kill at any moment leaves the previous file (or none), never half of a new one.

Audio (:func:`vqspeech.data.audio.save_audio`), manifests, TextGrids and checkpoints are all written
through :func:`atomic_target`; :func:`refuse_foreign_folder` keeps commands out of folders they did not make.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vqspeech.errors import UserError


@contextmanager
def atomic_target(path: str | os.PathLike, fsync: bool = False) -> Iterator[str]:
    """A temp file beside ``path`` to write to. On success it gets the usual file mode (0666 less the umask)
    and replaces ``path``; with ``fsync`` its data reaches the disk first. On failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes files private; outputs get the usual mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(path: str | os.PathLike, data: str | bytes, fsync: bool = False) -> Path:
    """Write a text (UTF-8) or binary file whole or not at all, replacing ``path``."""
    with atomic_target(path, fsync) as tmp, open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return Path(path)


def remove_stale_temps(root: str | os.PathLike, depth: int = 1) -> int:
    """Delete the temp files that killed writers left in ``root`` and its sub-folders down to ``depth``
    (``.NAME.XXXX.tmp``, as :func:`atomic_target` names them). Only a folder's single writer may call this.
    Returns how many were removed."""
    root = Path(root)
    patterns = [".*.tmp"] + ["/".join(["*"] * level + [".*.tmp"]) for level in range(1, depth + 1)]
    stale = [p for pattern in patterns for p in root.glob(pattern) if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def refuse_foreign_folder(root: str | os.PathLike, marker: str) -> None:
    """UserError when ``root`` holds files but not ``marker``, the file vqspeech writes first into every folder
    it makes: a folder vqspeech did not make is never written into."""
    root = Path(root)
    if root.is_dir() and any(root.iterdir()) and not (root / marker).is_file():
        raise UserError(f"{root} already holds files but no {marker}, so vqspeech did not make it; choose "
                        f"another --out (an empty or new folder)")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file (64 hex digits), remembered per (path, size, modification time): a file is hashed
    once per process. What names a checkpoint's codes (checkpoint.file_hash) and checks a shipped model."""
    stat = Path(path).stat()
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
