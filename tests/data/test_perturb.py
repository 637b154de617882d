"""Information perturbation: the envelope warp moves formants by the ratio, the F0 shift moves the median and
scales the range exactly, the EQ's sections have the gains drawn, WORLD variants keep length and level and
change the pitch within the ranges, the bank is reused and rebuilt by file stamp, and crops of the variants
are the same samples of the utterance while the decoder's target stays the original."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import sosfreqz

from vqspeech.data.corpus import Utterance
from vqspeech.data.dataset import CropPerturbation, LoadedSplit, RandomCrops
from vqspeech.data.perturb import (PerturbConfig, cached_bank, eq_sections, random_eq, shift_pitch, warp_envelope,
                                   world_variants)
from vqspeech.data.pitch import track

SR = 16000


def vowel(seconds: float = 1.0, f0: float = 140.0, sr: int = SR) -> np.ndarray:
    """A voiced, vowel-like signal: harmonics of f0 falling as 1/k, under two formant bumps (600, 1,800 Hz)."""
    t = np.arange(int(seconds * sr)) / sr
    wav = np.zeros_like(t)
    for k in range(1, int(4000 / f0)):
        f = k * f0
        gain = (1 + np.exp(-((f - 600) / 200) ** 2) + 0.5 * np.exp(-((f - 1800) / 300) ** 2)) / k
        wav += gain * np.sin(2 * np.pi * f * t)
    return (0.3 * wav / np.abs(wav).max()).astype(np.float32)


def test_warp_moves_a_peak_by_the_ratio_and_ratio_one_is_the_identity():
    bins = np.arange(257)
    envelope = np.exp(-((bins - 40) / 4.0) ** 2)[None].repeat(3, axis=0) + 1e-3
    assert np.allclose(warp_envelope(envelope, 1.0), envelope)
    for ratio in (1.3, 0.75):
        assert int(warp_envelope(envelope, ratio)[0].argmax()) == round(40 * ratio)


def test_pitch_shift_moves_the_median_and_scales_the_log_range():
    rng = np.random.default_rng(0)
    f0 = np.where(rng.random(400) < 0.3, 0.0, np.exp(rng.normal(np.log(120), 0.2, 400)))
    out = shift_pitch(f0, 1.5, 1.25)
    voiced = f0 > 0
    assert ((out > 0) == voiced).all()
    assert np.median(out[voiced]) == pytest.approx(1.5 * np.median(f0[voiced]), rel=1e-9)
    assert np.log(out[voiced]).std() == pytest.approx(1.25 * np.log(f0[voiced]).std(), rel=1e-9)


def test_each_eq_section_has_the_gain_drawn_at_its_frequency():
    rng = np.random.default_rng(3)
    sections = eq_sections(rng, 12.0, SR)
    gains = np.random.default_rng(3).uniform(-12, 12, size=10)
    centres = np.geomspace(60, 7600, 10)
    for k in range(1, 9):  # the peaks: their gain at their centre
        _, h = sosfreqz(sections[k:k + 1], worN=[centres[k]], fs=SR)
        assert 20 * np.log10(abs(h[0])) == pytest.approx(gains[k], abs=1e-6)
    _, low = sosfreqz(sections[:1], worN=[1.0, SR / 2 - 1], fs=SR)   # low shelf: its gain at DC, none at Nyquist
    assert 20 * np.log10(abs(low)) == pytest.approx([gains[0], 0.0], abs=0.05)
    _, high = sosfreqz(sections[9:], worN=[1.0, SR / 2 - 1], fs=SR)  # high shelf: the reverse
    assert 20 * np.log10(abs(high)) == pytest.approx([0.0, gains[9]], abs=0.3)


def test_random_eq_is_seeded_and_zero_gain_is_the_identity():
    wav = vowel(0.25)
    a = random_eq(wav, np.random.default_rng(1), 12.0, SR)
    assert np.array_equal(a, random_eq(wav, np.random.default_rng(1), 12.0, SR))
    assert not np.allclose(a, random_eq(wav, np.random.default_rng(2), 12.0, SR))
    assert random_eq(wav, np.random.default_rng(1), 0.0, SR) is wav


def test_world_variants_keep_length_and_level_and_move_the_pitch_within_range():
    wav = vowel(1.0, f0=140.0)
    config = PerturbConfig(variants=4, formant=1.0, pitch_median=2.0, pitch_range=1.0)
    variants = world_variants(wav, SR, config, np.random.default_rng(0))
    assert variants.shape == (4, len(wav)) and variants.dtype == np.int16
    source = np.median(track(wav, SR)[track(wav, SR) > 0])
    ratios = []
    for v in variants.astype(np.float32) / 32768:
        assert np.sqrt(np.mean(v ** 2)) == pytest.approx(np.sqrt(np.mean(wav ** 2)), rel=0.05)
        f0 = track(v, SR)
        ratios.append(np.median(f0[f0 > 0]) / source)
    assert all(0.5 * 0.95 <= r <= 2.0 * 1.05 for r in ratios), ratios
    assert max(abs(np.log(r)) for r in ratios) > np.log(1.1), ratios  # the pitch did move


def write_corpus(tmp_path, n: int = 2):
    paths = []
    for i in range(n):
        path = tmp_path / f"u{i}.wav"
        sf.write(str(path), vowel(0.5, f0=120.0 + 40 * i), SR, subtype="PCM_16")
        paths.append(path)
    waves = [sf.read(str(p), dtype="float32")[0] for p in paths]
    return paths, waves


def test_the_bank_is_built_once_reused_and_rebuilt_for_a_changed_file(tmp_path):
    paths, waves = write_corpus(tmp_path)
    config = PerturbConfig(variants=2)
    keys = [(p, "") for p in paths]
    first = cached_bank(config, keys, waves, SR, None, tmp_path / "cache", workers=1)
    assert first.built == 2 and first.bytes > 0
    assert [v.shape for v in first.variants] == [(2, len(w)) for w in waves]
    again = cached_bank(config, keys, waves, SR, None, tmp_path / "cache", workers=1)
    assert again.built == 0 and all(np.array_equal(a, b) for a, b in zip(first.variants, again.variants))
    stat = os.stat(paths[1])
    os.utime(paths[1], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert cached_bank(config, keys, waves, SR, None, tmp_path / "cache", workers=1).built == 1
    other = cached_bank(PerturbConfig(variants=2, seed=1), keys, waves, SR, None, tmp_path / "cache", workers=1)
    assert other.folder != first.folder and other.built == 2


def test_crops_read_a_variant_at_the_same_place_and_the_target_stays_the_original(tmp_path):
    paths, waves = write_corpus(tmp_path)
    split = LoadedSplit(utterances=[Utterance(path=p, speaker="s", utterance=p.stem, split="train") for p in paths],
                        waves=waves, speaker_ids=[0, 0])
    bank = cached_bank(PerturbConfig(variants=2), [(p, "") for p in paths], waves, SR, None, tmp_path / "c", workers=1)
    plain = RandomCrops(split, 2000, seed=4)
    no_eq = RandomCrops(split, 2000, seed=4, perturbation=CropPerturbation(bank.variants, 0.0, SR))
    with_eq = RandomCrops(split, 2000, seed=4, perturbation=CropPerturbation(bank.variants, 12.0, SR))
    for i in range(20):
        a, b, c = plain[i], no_eq[i], with_eq[i]
        assert torch.equal(a["wav"], b["wav"]) and torch.equal(a["wav"], c["wav"])  # the target is untouched
        assert b["encoder_wav"].shape == a["wav"].shape and not torch.equal(b["encoder_wav"], a["wav"])
        found = [(u, v) for u in range(2) for v in range(2)
                 if any(np.allclose(bank.variants[u][v, s:s + 2000] / 32768, b["encoder_wav"][0].numpy())
                        for s in range(0, len(waves[u]) - 1999))]
        assert found, "the encoder's crop is a piece of a variant"
        assert not torch.equal(b["encoder_wav"], c["encoder_wav"])


def test_bad_perturb_options_are_refused_in_one_line():
    with pytest.raises(ValueError, match="at least 1"):
        PerturbConfig(variants=2, formant=0.8)
    with pytest.raises(ValueError, match="no option bogus"):
        PerturbConfig.from_config({"variants": 2, "bogus": 1})
    assert not PerturbConfig.from_config(None).enabled
