"""Training crops: item i depends only on (seed, i), crops are real audio, a resumed loader continues exactly, and
ranks under torchrun read disjoint items."""

import itertools
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from vqspeech.data.corpus import Utterance
from vqspeech.data.dataset import LoadedSplit, RandomCrops, StepItems, as_float, crop_loader, load_split

CROP = 256


@pytest.fixture
def split() -> LoadedSplit:
    """Four utterances of distinct noise (so a crop's position is recoverable); the last is shorter than CROP."""
    rng = np.random.default_rng(7)
    lengths = [3000, 1200, 2000, 100]
    waves = [rng.uniform(-1, 1, n).astype(np.float32) for n in lengths]
    utterances = [Utterance(path=Path(f"s{i % 2}/u{i}.wav"), speaker=f"s{i % 2}", utterance=f"u{i}", split="train")
                  for i in range(len(waves))]
    return LoadedSplit(utterances=utterances, waves=waves, speaker_ids=[i % 2 for i in range(len(waves))])


def locate(crop: np.ndarray, waves: list[np.ndarray]) -> tuple[int, int]:
    """(utterance, start) such that crop is waves[utterance][start:start + len(crop)], or zero-padded whole."""
    found = []
    for u, wav in enumerate(waves):
        if len(wav) < len(crop):
            if np.array_equal(crop[:len(wav)], wav) and not crop[len(wav):].any():
                found.append((u, 0))
            continue
        for start in np.flatnonzero(wav[:len(wav) - len(crop) + 1] == crop[0]):
            if np.array_equal(wav[start:start + len(crop)], crop):
                found.append((u, int(start)))
    assert len(found) == 1, f"crop found {len(found)} times"
    return found[0]


def test_item_depends_only_on_seed_and_index(split):
    a, b = RandomCrops(split, CROP, seed=3), RandomCrops(split, CROP, seed=3)
    for i in (0, 1, 17, 10**12):
        assert a[i].keys() == b[i].keys() == {"wav", "speaker"}
        assert torch.equal(a[i]["wav"], b[i]["wav"]) and torch.equal(a[i]["speaker"], b[i]["speaker"])
    # whatever was drawn in between
    first = a[5]["wav"]
    for i in range(50):
        a[i]
    assert torch.equal(a[5]["wav"], first)


def test_different_indices_and_seeds_give_different_crops(split):
    crops = RandomCrops(split, CROP, seed=3)
    items = [crops[i]["wav"] for i in range(20)]
    assert all(not torch.equal(x, y) for x, y in itertools.combinations(items, 2))
    other_seed = RandomCrops(split, CROP, seed=4)
    assert sum(torch.equal(crops[i]["wav"], other_seed[i]["wav"]) for i in range(20)) <= 2


def test_crops_are_pieces_of_one_utterance_with_its_speaker(split):
    crops = RandomCrops(split, CROP, seed=0)
    for i in range(200):
        wav, speaker = crops[i]["wav"], crops[i]["speaker"]
        assert wav.shape == (1, CROP) and wav.dtype == torch.float32
        u, _ = locate(wav[0].numpy(), split.waves)
        assert int(speaker) == split.speaker_ids[u]


def test_sampling_covers_every_utterance_roughly_by_length(split):
    crops = RandomCrops(split, CROP, seed=1)
    picks = [locate(crops[i]["wav"][0].numpy(), split.waves) for i in range(600)]
    counts = np.bincount([u for u, _ in picks], minlength=len(split.waves))
    assert (counts > 0).all(), counts
    share = counts / counts.sum()
    expected = np.array([len(w) for w in split.waves]) / sum(len(w) for w in split.waves)
    assert np.abs(share - expected).max() < 0.08, (share, expected)
    starts = {s for u, s in picks if u == 0}
    assert len(starts) > 50, "crops of the long utterance should start at many places"


def take(loader, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return list(itertools.islice(iter(loader), n))


def assert_same_batches(xs, ys):
    assert len(xs) == len(ys)
    for x, y in zip(xs, ys):
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


@pytest.mark.parametrize("start_step", [1, 3])
def test_loader_from_start_step_yields_the_uninterrupted_batches(split, start_step):
    crops = RandomCrops(split, CROP, seed=5)
    straight = take(crop_loader(crops, batch_size=3, start_step=0, num_workers=0, pin_memory=False), 6)
    resumed = take(crop_loader(crops, batch_size=3, start_step=start_step, num_workers=0, pin_memory=False),
                   6 - start_step)
    assert straight[0]["wav"].shape == (3, 1, CROP)
    assert_same_batches(resumed, straight[start_step:])
    assert not torch.equal(straight[0]["wav"], straight[1]["wav"])


def test_loader_batches_do_not_depend_on_the_number_of_workers(split):
    crops = RandomCrops(split, CROP, seed=5)
    serial = take(crop_loader(crops, batch_size=2, start_step=2, num_workers=0, pin_memory=False), 5)
    parallel = take(crop_loader(crops, batch_size=2, start_step=2, num_workers=2, pin_memory=False), 5)
    assert_same_batches(parallel, serial)


def test_ranks_take_consecutive_disjoint_shares_of_each_step_and_resume_exactly():
    alone = list(itertools.islice(StepItems(start_step=2, batch_size=3), 9))
    assert alone == list(range(6, 15))  # one process: items s·B … as before ranks existed
    ranks = [list(itertools.islice(StepItems(start_step=0, batch_size=3, rank=r, world_size=2), 12)) for r in (0, 1)]
    for step in range(4):  # step s: rank 0 reads (2s)·3 …, rank 1 reads (2s + 1)·3 …
        assert ranks[0][3 * step:3 * step + 3] + ranks[1][3 * step:3 * step + 3] == list(range(6 * step, 6 * step + 6))
    resumed = list(itertools.islice(StepItems(start_step=2, batch_size=3, rank=1, world_size=2), 6))
    assert resumed == ranks[1][6:]


def test_no_audio_to_crop_raises():
    with pytest.raises(ValueError):
        RandomCrops(LoadedSplit(utterances=[], waves=[], speaker_ids=[]), CROP, seed=0)


def test_load_split_skips_an_unreadable_file_with_a_warning_naming_it(tmp_path, caplog):
    rate = 16000
    utterances = []
    for name, speaker in [("a/good1.wav", "a"), ("b/broken.wav", "b"), ("b/good2.wav", "b"), ("c/other.wav", "c")]:
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        if "broken" in name:
            path.write_bytes(b"RIFF not really a wav file")
        else:
            sf.write(str(path), np.full(800, 0.25, dtype=np.float32), rate, subtype="PCM_16")
        utterances.append(Utterance(path=path, speaker=speaker, utterance=path.stem, split="train"))

    with caplog.at_level(logging.WARNING, logger="vqspeech"):
        loaded = load_split(utterances, ["a", "b"], rate, progress=False)  # speaker c is not in the model

    assert [u.utterance for u in loaded.utterances] == ["good1", "good2"]
    assert loaded.speaker_ids == [0, 1]
    assert loaded.samples == 1600
    assert all(w.dtype == np.float32 for w in loaded.waves)
    assert np.allclose(loaded.waves[0], 0.25, atol=1e-4)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(tmp_path / "b/broken.wav") in warnings[0]
    assert len(loaded.skipped) == 1 and "broken.wav" in loaded.skipped[0]



def test_pcm16_split_is_lossless_for_16_bit_audio_and_crops_as_float(tmp_path):
    rate = 16000
    rng = np.random.default_rng(3)
    pcm = rng.integers(-32768, 32767, 4000, dtype=np.int16)
    pcm[:2] = (-32768, 32767)  # full scale both ways
    sf.write(str(tmp_path / "a.wav"), pcm, rate, subtype="PCM_16")
    utt = [Utterance(path=tmp_path / "a.wav", speaker="a", utterance="a", split="train")]
    as_int = load_split(utt, ["a"], rate, progress=False, pcm16=True)
    as_flt = load_split(utt, ["a"], rate, progress=False)
    assert as_int.waves[0].dtype == np.int16 and np.array_equal(as_int.waves[0], pcm)  # exact round trip
    assert as_int.waves[0].nbytes * 2 == as_flt.waves[0].nbytes
    assert np.array_equal(as_float(as_int.waves[0]), as_flt.waves[0])
    for i in range(5):  # the same crops, as float32, from either
        a, b = RandomCrops(as_int, CROP, 0)[i]["wav"], RandomCrops(as_flt, CROP, 0)[i]["wav"]
        assert a.dtype == torch.float32 and torch.equal(a, b)
