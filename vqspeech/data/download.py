"""Fetching a corpus archive: resumable HTTP download, checksum check, unzip. urllib only.

``download`` writes to ``<name>.part``, asking the server for the rest of it (HTTP Range) after an
interruption or on a re-run, and renames it to ``<name>`` only once its checksum matches. A mismatch
is an error that keeps the file, so that nothing is fetched twice by mistake.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from tqdm import tqdm

from vqspeech.errors import UserError
from vqspeech.files import write_atomic

log = logging.getLogger(__name__)

ALGORITHMS = ("md5", "sha256")
CHUNK = 1 << 20


@dataclass
class Downloaded:
    path: Path
    size: int             # bytes
    reused: bool          # the file was there already (checked, not fetched)


def parse_checksum(text: str) -> tuple[str, str]:
    """``"sha256:HEX"`` or ``"md5:HEX"`` (a bare hex digest: the algorithm is told by its length) -> (algorithm, hex)."""
    algorithm, _, digest = text.rpartition(":")
    digest = digest.strip().lower()
    algorithm = algorithm.lower() or {32: "md5", 64: "sha256"}.get(len(digest), "")
    if algorithm not in ALGORITHMS or not re.fullmatch(r"[0-9a-f]+", digest) \
            or len(digest) != hashlib.new(algorithm).digest_size * 2:
        raise UserError(f"checksum {text!r} is not md5:HEX (32 digits) or sha256:HEX (64 digits)")
    return algorithm, digest


def download(url: str, dest: str | os.PathLike, checksum: str | None, *, retries: int = 3, timeout: float = 60,
             progress: bool = True) -> Downloaded:
    """Fetch ``url`` to ``dest`` (a no-op when ``dest`` is there and matches), resuming ``dest.part``.

    Args:
        checksum: ``"sha256:HEX"`` or ``"md5:HEX"``; None skips the check.
        retries: reconnections (each resuming where the last stopped) before giving up.
    Raises:
        UserError: the server refuses, the connection keeps failing (the .part file stays, a re-run resumes),
            or the checksum does not match (the file stays, named in the message).
    """
    expected = parse_checksum(checksum) if checksum else None
    dest = Path(dest)
    if dest.is_file():
        _verify(dest, expected, progress)
        return Downloaded(dest, dest.stat().st_size, reused=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, timeout, progress)
            break
        except HTTPError as exc:
            raise UserError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
        except (URLError, OSError, http.client.HTTPException) as exc:
            have = part.stat().st_size if part.is_file() else 0
            reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
            if attempt == retries:
                raise UserError(f"download of {url} stopped at {have} bytes ({reason}); run again to resume "
                                f"{part}") from None
            log.warning("download interrupted at %d bytes (%s); resuming", have, reason)
    _verify(part, expected, progress)
    os.replace(part, dest)
    return Downloaded(dest, dest.stat().st_size, reused=False)


def _fetch(url: str, part: Path, timeout: float, progress: bool) -> None:
    """Append the rest of ``url`` to ``part``. Raises on a short or broken transfer."""
    offset = part.stat().st_size if part.is_file() else 0
    request = Request(url, headers={"User-Agent": "vqspeech", **({"Range": f"bytes={offset}-"} if offset else {})})
    try:
        response = urlopen(request, timeout=timeout)
    except HTTPError as exc:
        if exc.code == 416 and offset:  # nothing after offset: the file is whole (the checksum will tell)
            return
        raise
    with response:
        status = getattr(response, "status", None) or 200  # file:// answers without a status
        if offset and status != 206:
            log.warning("%s ignores HTTP Range; downloading it again from the start", url)
            offset = 0
        elif offset:
            log.info("resuming %s at %d bytes", part, offset)
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        written = 0
        with open(part, "ab" if offset else "wb") as f, \
                tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                     desc=part.name.removesuffix(".part"), disable=not progress) as bar:
            while chunk := response.read(CHUNK):
                f.write(chunk)
                written += len(chunk)
                bar.update(len(chunk))
    if total is not None and offset + written < total:
        raise http.client.IncompleteRead(b"", total - offset - written)


def _verify(path: Path, expected: tuple[str, str] | None, progress: bool) -> None:
    if expected is None:
        return
    algorithm, digest = expected
    h = hashlib.new(algorithm)
    with open(path, "rb") as f, tqdm(total=path.stat().st_size, unit="B", unit_scale=True, unit_divisor=1024,
                                     desc=f"{algorithm} {path.name}", disable=not progress) as bar:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            bar.update(len(chunk))
    if h.hexdigest() != digest:
        raise UserError(f"{path}: {algorithm} is {h.hexdigest()}, expected {digest}; the file is kept: delete it "
                        f"to download again, or pass the right --checksum")


def extracted(archive: Path, into: Path) -> bool:
    """Whether :func:`extract_zip` finished unpacking ``archive`` into ``into``."""
    return _marker(archive, into).is_file()


def extract_zip(archive: str | os.PathLike, into: str | os.PathLike, progress: bool = True) -> None:
    """Unpack ``archive`` into ``into`` (skipped when done before; an interrupted unpacking starts again)."""
    archive, into = Path(archive), Path(into)
    if extracted(archive, into):
        return
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            with tqdm(total=sum(m.file_size for m in members), unit="B", unit_scale=True, unit_divisor=1024,
                      desc=f"unzip {archive.name}", disable=not progress) as bar:
                for member in members:
                    zf.extract(member, into)
                    bar.update(member.file_size)
    except zipfile.BadZipFile as exc:
        raise UserError(f"{archive}: not a usable zip file ({exc}); delete it to download again") from None
    write_atomic(_marker(archive, into), "done\n")


def _marker(archive: Path, into: Path) -> Path:
    return into / f".{archive.name}.extracted"
