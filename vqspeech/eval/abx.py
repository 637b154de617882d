"""Minimal-pair ABX discrimination of phones in context (ZeroSpeech 2017/2019, Libri-Light "within context").

An *item* is one phone token with its neighbours: (utterance, onset, offset, phone, previous, next, speaker),
the frames of a representation whose centres fall inside [onset, offset). A triplet (A, B, X) has A and X
the same phone, B another, all three in the same context (previous, next); it is an error when X is closer
to B than to A (a tie counts one half). Distances are dynamic time warping over frames with the angular
distance arccos(cos) / π, averaged along the warping path.

* within speakers: A, B and X from one speaker;
* across speakers: A and B from one speaker, X from another.

Errors are averaged over the triplets of each (context, speaker(s), phone A, phone B) cell, then over
contexts, then speakers, then phone pairs. To bound the cost, each cell scores at most
``max_triplets_per_cell`` triplets drawn with a fixed seed. :func:`write_item_file` writes the items in the
ZeroSpeech ``.item`` format so other scorers can use the same set (tools/zrc_abx.py runs the reference
scorer, ``zrc-abx2``, on them).

Two conventions of the reference scorer differ from the defaults here; ``zerospeech=True`` follows it:

* frames: an item holds the frames whose centres fall inside [onset, offset); the reference scorer's end
  index is floor(offset · rate − 0.5), which leaves out the last of them (and items of one frame);
* across speakers: the reference averages each (speaker of A and B, phone A, phone B) cell over its
  contexts and X speakers together, then over speakers; the default averages over contexts first, then over
  the (A/B speaker, X speaker) pairs.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vqspeech.data.alignments import PhoneSet, Segment
from vqspeech.files import write_atomic


@dataclass(frozen=True)
class AbxItem:
    utterance: int        # index into the probe set
    file: str             # utterance id written to the item file
    onset: float          # seconds
    offset: float
    phone: str
    previous: str
    next: str
    speaker: str
    first_frame: int      # frames [first_frame, end_frame) of the representation
    end_frame: int


@dataclass
class AbxResult:
    within_speaker: float | None   # error rate in [0, 1]; None when no triplet could be formed
    across_speaker: float | None
    within_cells: int              # (context, speaker, phone pair) cells scored
    across_cells: int
    triplets: int                  # triplets scored, both conditions


def item_frames(onset: float, offset: float, frame_rate: float, n_frames: int,
                zerospeech: bool = False) -> tuple[int, int]:
    """Frames [first, end) of a phone [onset, offset) s, frame j centred at (j + ½) / frame_rate: those whose
    centres fall inside it; with ``zerospeech``, the reference scorer's range, which ends one frame earlier."""
    first = max(0, int(np.ceil(onset * frame_rate - 0.5)))
    last = np.floor(offset * frame_rate - 0.5) if zerospeech else np.ceil(offset * frame_rate - 0.5)
    return first, min(n_frames, int(last))


def abx_items(alignments: Sequence[Sequence[Segment]], files: Sequence[str], speakers: Sequence[str],
              n_frames: Sequence[int], frame_rate: float, phone_set: PhoneSet,
              zerospeech: bool = False) -> list[AbxItem]:
    """The triphone items of each utterance: every non-silence phone with a neighbour on both sides and at least
    one frame inside it (:func:`item_frames`). Silence is a valid neighbour; deleted symbols (phone_set.map ->
    None) are dropped."""
    items = []
    for u, (segments, file, speaker, frames) in enumerate(zip(alignments, files, speakers, n_frames)):
        mapped = [(s, phone_set.map(s.phone)) for s in sorted(segments, key=lambda s: s.start)]
        mapped = [(s, p) for s, p in mapped if p is not None]
        for (_, before), (seg, phone), (_, after) in zip(mapped, mapped[1:], mapped[2:]):
            if phone == phone_set.silence_label:
                continue
            first, end = item_frames(seg.start, seg.end, frame_rate, frames, zerospeech)
            if end > first:
                items.append(AbxItem(u, file, seg.start, seg.end, phone, before, after, speaker, first, end))
    return items


def write_item_file(path: str | Path, items: Sequence[AbxItem]) -> None:
    """ZeroSpeech item file: ``#file onset offset #phone prev-phone next-phone speaker``, one item per line."""
    lines = ["#file onset offset #phone prev-phone next-phone speaker"]
    lines += [f"{it.file} {it.onset:.4f} {it.offset:.4f} {it.phone} {it.previous} {it.next} {it.speaker}"
              for it in items]
    write_atomic(path, "\n".join(lines) + "\n")


def read_item_file(path: str | Path, n_frames: dict[str, int], frame_rate: float,
                   zerospeech: bool = False) -> list[AbxItem]:
    """The items of a ZeroSpeech ``.item`` file over the utterances ``n_frames`` names (file -> its frames, in
    the order of the feature list the items will index); items of other files, or without a frame, are left
    out."""
    index = {file: u for u, file in enumerate(n_frames)}
    items = []
    for line in Path(path).read_text().splitlines()[1:]:
        if not line.strip():
            continue
        file, onset, offset, phone, previous, after, speaker = line.split()
        if file not in index:
            continue
        first, end = item_frames(float(onset), float(offset), frame_rate, n_frames[file], zerospeech)
        if end > first:
            items.append(AbxItem(index[file], file, float(onset), float(offset), phone, previous, after, speaker,
                                 first, end))
    return items


def angular_dtw(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """DTW distance of each pair (a [n, D], b [m, D]) with frame distance arccos(cos) / π, divided by the
    length of the best path. All pairs are computed together on padded arrays. Returns [P] float."""
    if not pairs:
        return np.zeros(0)
    n_max, m_max = max(len(a) for a, _ in pairs), max(len(b) for _, b in pairs)
    dim = pairs[0][0].shape[1]
    a_pad, b_pad = np.zeros((len(pairs), n_max, dim)), np.zeros((len(pairs), m_max, dim))
    for p, (a, b) in enumerate(pairs):
        a_pad[p, :len(a)], b_pad[p, :len(b)] = _unit(a), _unit(b)
    cost = np.arccos(np.clip(np.einsum("pid,pjd->pij", a_pad, b_pad), -1.0, 1.0)) / np.pi
    total = np.full((len(pairs), n_max + 1, m_max + 1), np.inf)
    length = np.zeros_like(total)
    total[:, 0, 0] = 0.0
    index = np.arange(len(pairs))
    for i in range(1, n_max + 1):
        for j in range(1, m_max + 1):
            options = np.stack([total[:, i - 1, j - 1], total[:, i - 1, j], total[:, i, j - 1]])
            lengths = np.stack([length[:, i - 1, j - 1], length[:, i - 1, j], length[:, i, j - 1]])
            best = options.argmin(0)
            total[:, i, j] = options[best, index] + cost[:, i - 1, j - 1]
            length[:, i, j] = lengths[best, index] + 1
    n = np.array([len(a) for a, _ in pairs])
    m = np.array([len(b) for _, b in pairs])
    return total[index, n, m] / length[index, n, m]


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; a zero row stays zero (its angle to anything is then π/2)."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def abx_error(items: Sequence[AbxItem], features: Sequence[np.ndarray], max_triplets_per_cell: int = 8,
              seed: int = 0, zerospeech: bool = False) -> AbxResult:
    """Within- and across-speaker ABX error of ``features`` (per utterance [F_i, D]) on ``items``; with
    ``zerospeech``, across-speaker cells are averaged in the reference scorer's order (module docstring)."""
    rng = np.random.default_rng(seed)
    groups: dict[tuple[str, str], dict[str, dict[str, list[int]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list)))  # context -> speaker -> phone -> item indices
    for i, it in enumerate(items):
        groups[(it.previous, it.next)][it.speaker][it.phone].append(i)

    cells: list[tuple[str, tuple, list[tuple[int, int, int]]]] = []  # (condition, key, triplets)
    for context, by_speaker in sorted(groups.items()):
        for s_ab, s_x in itertools.product(sorted(by_speaker), repeat=2):
            condition = "within" if s_ab == s_x else "across"
            phones_ab, phones_x = by_speaker[s_ab], by_speaker[s_x]
            for pa, pb in itertools.permutations(sorted(phones_ab), 2):
                candidates = [(a, b, x) for a in phones_ab[pa] for b in phones_ab[pb] for x in phones_x.get(pa, [])
                              if x != a]
                if not candidates:
                    continue
                if len(candidates) > max_triplets_per_cell:
                    chosen = rng.choice(len(candidates), max_triplets_per_cell, replace=False)
                    candidates = [candidates[c] for c in sorted(chosen)]
                cells.append((condition, (context, s_ab, s_x, pa, pb), candidates))

    pair_index: dict[tuple[int, int], int] = {}
    for _, _, triplets in cells:
        for a, b, x in triplets:
            pair_index.setdefault((a, x), len(pair_index))
            pair_index.setdefault((b, x), len(pair_index))
    frames = [features[it.utterance][it.first_frame:it.end_frame] for it in items]
    distances = np.zeros(len(pair_index))
    ordered = sorted(pair_index, key=lambda pq: (len(frames[pq[0]]), len(frames[pq[1]])))  # similar sizes
    for start in range(0, len(ordered), 2048):  # bounded memory: [P, n, m] per chunk
        chunk = ordered[start:start + 2048]
        d = angular_dtw([(frames[p], frames[q]) for p, q in chunk])
        for pq, value in zip(chunk, d):
            distances[pair_index[pq]] = value

    scores: dict[str, dict[tuple, float]] = {"within": {}, "across": {}}
    for condition, key, triplets in cells:
        d_ax = np.array([distances[pair_index[(a, x)]] for a, _, x in triplets])
        d_bx = np.array([distances[pair_index[(b, x)]] for _, b, x in triplets])
        scores[condition][key] = float(np.mean((d_bx < d_ax) + 0.5 * (d_bx == d_ax)))
    return AbxResult(within_speaker=_average(scores["within"]),
                     across_speaker=_average(scores["across"], zerospeech),
                     within_cells=len(scores["within"]), across_cells=len(scores["across"]),
                     triplets=sum(len(t) for _, _, t in cells))


def _average(cells: dict[tuple, float], zerospeech: bool = False) -> float | None:
    """Mean over contexts, then over speaker (pairs), then over phone pairs. Keys: (context, s_ab, s_x, pa, pb).
    With ``zerospeech`` (across speakers), the reference scorer's order: over (context, X speaker) together per
    (A/B speaker, phone A, phone B), then over A/B speakers, then over phone pairs."""
    if not cells:
        return None
    by_speakers: dict[tuple, list[float]] = defaultdict(list)
    for (context, s_ab, s_x, pa, pb), error in cells.items():
        by_speakers[(s_ab, pa, pb) if zerospeech else (s_ab, s_x, pa, pb)].append(error)
    by_pair: dict[tuple, list[float]] = defaultdict(list)
    for key, errors in by_speakers.items():
        by_pair[key[-2:]].append(float(np.mean(errors)))
    return float(np.mean([np.mean(errors) for errors in by_pair.values()]))
