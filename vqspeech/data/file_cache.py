"""Per-file results cached beside a corpus: one ``.pt`` file of entries keyed by each audio file's path and
the part of it taken, stamped with its size and modification time.

A changed file (or a new one) is computed again, the others are reused; new entries are written back whole
(:func:`vqspeech.files.atomic_target`). A damaged cache is rebuilt, and a cache that cannot be written is
only warned about. Speaker vectors (:mod:`vqspeech.data.speaker_vectors`) and F0 tracks
(:mod:`vqspeech.data.pitch`) are kept this way.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from vqspeech.files import atomic_target

log = logging.getLogger(__name__)


def cached_per_file(path: Path, keys: Sequence[tuple[str | os.PathLike, str]], waves: Sequence[np.ndarray],
                    compute: Callable[[np.ndarray], dict[str, torch.Tensor]], what: str,
                    progress: bool = False) -> list[dict[str, torch.Tensor]]:
    """``compute(wave)`` for each wave, from the cache file ``path`` where its entry is current.

    Args:
        keys: per wave, the file it was read from and the part of it taken ("" for the whole file).
        waves: the audio ``compute`` takes, one per key.
        compute: wave -> named tensors (what an entry holds, besides its stamp).
        what: the results' name, for the progress bar and the log ("speaker vectors").
    Returns:
        per wave, its entry's tensors (without the stamp).
    """
    from tqdm import tqdm

    cache: dict = {}
    if path.is_file():
        try:
            cache = torch.load(path, weights_only=True)
        except Exception as exc:  # a damaged cache is rebuilt
            log.warning("%s is damaged (%s); computing the %s again", path, exc, what)
    out, changed = [], 0
    for (file, part), wav in tqdm(list(zip(keys, waves)), desc=what, unit="file", disable=not progress,
                                  leave=False):
        stat = os.stat(file)
        key, stamp = f"{Path(file).resolve()}{part}", [stat.st_size, stat.st_mtime_ns]
        entry = cache.get(key)
        if entry is None or entry["stamp"].tolist() != stamp:
            entry = {"stamp": torch.tensor(stamp, dtype=torch.int64), **compute(wav)}
            cache[key] = entry
            changed += 1
        out.append({k: v for k, v in entry.items() if k != "stamp"})
    if changed:
        try:
            with atomic_target(path) as tmp:
                torch.save(cache, tmp)
            log.info("%s: %d computed, %d reused (%s)", what, changed, len(out) - changed, path)
        except OSError as exc:
            log.warning("cannot write the %s cache %s (%s); they will be computed again next time", what, path, exc)
    return out
