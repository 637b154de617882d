"""Phoneme probing: each metric on hand-made cases with known answers, no division by zero on empty input,
and the whole probe on a tiny untrained model over a tiny aligned corpus."""

import copy
import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from vqspeech.data.alignments import PhoneSet
from vqspeech.data.corpus import load_corpus
from vqspeech.errors import UserError
from vqspeech.eval.probing import (bitrates, cluster_scores, linear_probe, mapping_accuracy, mfcc_frames,
                                   probe_phonemes, split_by_key)
from vqspeech.models import build_model

SR = 16000
KWARGS = {  # as tests/models/test_vqvae.py: hop 8
    "model": {
        "encoder": {"channels": 8, "latent_dim": 4, "n_layers": 3, "kernel_size": 4, "stride": 2},
        "decoder": {"residual_channels": 8, "skip_channels": 16, "cond_channels": 8, "kernel_size": 2,
                    "layers_per_stack": 3, "stacks": 2},
        "speaker_dim": 4,
        "bottleneck": {"kind": "vq", "codebook_size": 16, "ema_decay": None, "ema_epsilon": 1e-5, "init": "random",
                       "kmeans_iters": 10, "dead_code_steps": None},
    },
    "speakers": ["spk_a", "spk_b"],
}


def test_codes_equal_to_phones_score_perfectly():
    phones = np.tile(np.arange(5), 40)
    m = mapping_accuracy(phones[:100], phones[:100], phones[100:], phones[100:], 5, 5)
    assert m.accuracy == 1.0 and m.majority == pytest.approx(0.2)
    assert m.confusion.trace() == 100
    scores = cluster_scores(phones, phones, 5, 5)
    assert scores == pytest.approx({"phone_purity": 1.0, "cluster_purity": 1.0, "pnmi": 1.0})
    # a relabelled, finer clustering (each phone split over two codes) is as pure and as informative
    codes = phones * 2 + np.arange(200) % 2
    assert cluster_scores(codes, phones, 10, 5)["phone_purity"] == 1.0
    assert cluster_scores(codes, phones, 10, 5)["pnmi"] == pytest.approx(1.0)
    assert cluster_scores(codes, phones, 10, 5)["cluster_purity"] == pytest.approx(0.5)


def test_codes_independent_of_phones_carry_no_information():
    i = np.arange(400)
    phones, codes = i % 2, (i // 2) % 2  # every (phone, code) pair equally often
    assert cluster_scores(codes, phones, 2, 2)["pnmi"] == pytest.approx(0.0, abs=1e-12)
    m = mapping_accuracy(codes[:200], phones[:200], codes[200:], phones[200:], 2, 2)
    assert m.accuracy == pytest.approx(0.5)


def test_purities_on_a_small_joint_distribution():
    # P(p, c): (0, 0) 1/2, (1, 0) 1/4, (1, 1) 1/4
    scores = cluster_scores(np.array([0, 0, 0, 1]), np.array([0, 0, 1, 1]), 2, 2)
    assert scores["phone_purity"] == pytest.approx(0.75) and scores["cluster_purity"] == pytest.approx(0.75)
    p_phone, p_code = (0.5, 0.5), (0.75, 0.25)
    mutual = sum(p * math.log(p / (p_phone[i] * p_code[j])) for (i, j), p in {(0, 0): 0.5, (1, 0): 0.25,
                                                                             (1, 1): 0.25}.items())
    assert scores["pnmi"] == pytest.approx(mutual / math.log(2))  # H(phone) = 1 bit


def test_unseen_code_maps_to_the_majority_phone():
    m = mapping_accuracy(np.array([0, 0, 1]), np.array([2, 2, 1]), np.array([5, 1, 0]), np.array([2, 1, 1]), 8, 3)
    assert list(m.mapping[[0, 1, 5]]) == [2, 1, 2]
    assert m.accuracy == pytest.approx(2 / 3) and m.majority == pytest.approx(1 / 3)


def test_empty_inputs_give_none_not_a_division_by_zero():
    empty = np.zeros(0, dtype=np.int64)
    with np.errstate(all="raise"):
        m = mapping_accuracy(empty, empty, np.array([1]), np.array([0]), 4, 3)
        assert m.accuracy is None and m.majority is None
        assert mapping_accuracy(np.array([1]), np.array([0]), empty, empty, 4, 3).accuracy is None
        assert cluster_scores(empty, empty, 4, 3) == {"phone_purity": None, "cluster_purity": None, "pnmi": None}
        single = cluster_scores(np.array([0, 1, 2]), np.array([0, 0, 0]), 4, 3)  # one phone: H(phone) = 0
        assert single["pnmi"] is None and single["phone_purity"] == 1.0
        assert bitrates([], 250.0, 256) == {"bitrate": 2000.0, "entropy_rate": None, "entropy_rate_collapsed": None}
        assert bitrates([empty], 250.0, 256)["entropy_rate"] is None
        assert linear_probe(np.zeros((0, 3)), empty, np.zeros((2, 3)), np.array([0, 1]), 2) is None


def test_bitrates_nominal_entropy_and_collapsed():
    rates = bitrates([np.array([0, 0, 1, 1]), np.array([2, 2, 2, 2])], frame_rate=4.0, codebook_size=16)
    # 8 frames = 2 s; unigram p = (1/4, 1/4, 1/2): 1.5 bit × 4 symbols/s; collapsed [0 1] [2]: 3 symbols
    assert rates["bitrate"] == 16.0
    assert rates["entropy_rate"] == pytest.approx(1.5 * 4)
    assert rates["entropy_rate_collapsed"] == pytest.approx(math.log2(3) * 3 / 2)


def test_linear_probe_separates_separable_classes_and_ignores_constant_columns():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    x = np.c_[np.eye(3)[y] * 4 + rng.normal(0, 0.5, (300, 3)), np.ones(300)]  # a constant column: std 0
    assert linear_probe(x[:200], y[:200], x[200:], y[200:], 3) == 1.0


def test_split_by_key_is_fixed_and_keeps_a_key_on_one_side():
    keys = [f"s{i:03d}" for i in range(20)] * 3  # a parallel corpus: each sentence by three speakers
    held = split_by_key(keys)
    assert held.sum() == 3 * 6 and np.array_equal(held, split_by_key(list(keys)))
    assert all(held[i] == held[i + 20] == held[i + 40] for i in range(20))
    assert split_by_key(["a", "b"]).sum() == 1
    assert not split_by_key(["a", "a"]).any()  # one key: nothing to hold out against


@pytest.mark.filterwarnings("ignore:n_fft=512 is too large")
def test_mfcc_frames_one_per_code_frame():
    wav = np.random.default_rng(0).normal(0, 0.1, 1000).astype(np.float32)
    assert mfcc_frames(wav, SR, 64).shape == (1000 // 64, 39)
    assert mfcc_frames(wav[:64], SR, 64).shape == (1, 39)


PHONES = ["pau", "s", "ah", "m", "iy", "pau"]


def tiny_aligned_corpus(root, bad: bool = True) -> None:
    """2 speakers × 5 utterances of 0.48 s: noise or a tone per 80 ms phone, with .psdur phone times; with
    ``bad``, spk_b/u4's alignment runs past its audio. u0 is in the train split, the others in test."""
    rows = []
    for s, speaker in enumerate(("spk_a", "spk_b")):
        (root / speaker).mkdir(parents=True)
        for u in range(5):
            rng = np.random.default_rng([s, u])
            t = np.arange(1280) / SR
            parts = [0.05 * rng.standard_normal(1280) if p in ("pau", "s") else
                     0.4 * np.sin(2 * np.pi * (150 + 100 * k + 20 * s) * t) for k, p in enumerate(PHONES)]
            sf.write(str(root / speaker / f"u{u}.wav"), np.concatenate(parts).astype(np.float32), SR)
            ends = [0.08 * (k + 1) for k in range(len(PHONES))]
            if bad and (s, u) == (1, 4):
                ends[-1] = 0.9  # past the audio (0.48 s) by more than the tolerance
            (root / speaker / f"u{u}.psdur").write_text(" ".join(f"{p}:{e:.3f}" for p, e in zip(PHONES, ends)))
            rows.append({"path": f"{speaker}/u{u}.wav", "speaker": speaker, "utterance": f"u{u}",
                         "split": "train" if u == 0 else "test", "alignment": f"{speaker}/u{u}.psdur"})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_probe_phonemes_end_to_end_on_a_tiny_model(tmp_path):
    tiny_aligned_corpus(tmp_path / "corpus")
    corpus = load_corpus(tmp_path / "corpus", "manifest.jsonl")
    model = build_model(copy.deepcopy(KWARGS)).eval()
    before = copy.deepcopy(model.state_dict())
    report = probe_phonemes(model, corpus, SR, tmp_path / "probe", PhoneSet(), split="test",
                            model_kwargs=copy.deepcopy(KWARGS), progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the probed model is untouched
    assert report.columns == ["model", "MFCC k-means centroids", "random-init model", "raw MFCC frames"]
    raw = report.columns.index("raw MFCC frames")  # ABX only: it has no codes
    assert report.metrics["pnmi"][raw] is None and report.metrics["mapping_accuracy"][raw] is None
    for key in ("abx_within", "abx_across"):  # scored wherever the codes' ABX is
        assert (report.metrics[key][raw] is None) == (report.metrics[key][0] is None), key
    assert report.n_utterances == 7 and report.speakers == ["spk_a", "spk_b"]  # 8 in the split, 1 left out
    assert list(report.skipped) == [str(tmp_path / "corpus" / "spk_b" / "u4.psdur")]
    assert "past the audio" in report.skipped[str(tmp_path / "corpus" / "spk_b" / "u4.psdur")][0]
    assert report.phones == ["ah", "iy", "m", "s", "sil"] and report.frame_rate == SR / 8
    assert report.n_frames == report.n_labelled_frames == 7 * len(PHONES) * 1280 // 8
    assert len(report.held_out_speakers) == 1
    for key in ("mapping_accuracy", "majority_accuracy", "phone_purity", "pnmi", "probe_continuous",
                "mapping_accuracy_speaker_split", "speaker_accuracy"):
        assert all(v is not None and 0.0 <= v <= 1.0 + 1e-9 for v in report.metrics[key][:raw]), key
    assert report.metrics["bitrate"] == [2000 * 4.0] * 3 + [None]
    # MFCC k-means at K = 16 tells these tones apart: its map beats guessing the majority phone
    assert report.metrics["mapping_accuracy"][1] > report.metrics["majority_accuracy"][1] + 0.2
    saved = json.loads((tmp_path / "probe" / "probe.json").read_text())
    assert saved["metrics"] == report.metrics and saved["columns"] == report.columns
    table = (tmp_path / "probe" / "probe.md").read_text()
    assert "| PNMI |" in table and "u4.psdur: 1 problem(s)" in table
    # ABX items: the 4 non-silence phones of each utterance; every utterance says the same phones, so no
    # context holds two different phones and there is no minimal pair to score
    assert len((tmp_path / "probe" / "abx.item").read_text().splitlines()) == 1 + 7 * 4 == 1 + report.n_abx_items
    assert report.metrics["abx_within"] == report.metrics["abx_across"] == [None] * 4
    for png in ("cooccurrence.png", "confusion.png", "utterance.png"):
        assert (tmp_path / "probe" / png).read_bytes()[:4] == b"\x89PNG"


def test_exported_features_are_the_frames_each_column_is_scored_on(tmp_path):
    from vqspeech.data.audio import load_audio
    from vqspeech.eval.abx import read_item_file

    tiny_aligned_corpus(tmp_path / "corpus", bad=False)
    corpus = load_corpus(tmp_path / "corpus", "manifest.jsonl")
    model = build_model(copy.deepcopy(KWARGS)).eval()
    report = probe_phonemes(model, corpus, SR, tmp_path / "probe", PhoneSet(), split="test", progress=False,
                            export_features=True)
    folder = tmp_path / "probe" / "features"
    index = json.loads((folder / "features.json").read_text())
    assert index["frame_rate"] == report.frame_rate and sorted(index["columns"].values()) == sorted(report.columns)
    slug = {name: s for s, name in index["columns"].items()}
    wav = load_audio(tmp_path / "corpus" / "spk_a" / "u1.wav", SR)
    codes = model.encode_waveform(wav)
    code_vectors = np.load(folder / slug["model"] / "spk_a_u1.npy")
    assert np.allclose(code_vectors, model.bottleneck.codebook[codes].detach().numpy())  # code vectors [F, D]
    assert np.allclose(np.load(folder / slug["raw MFCC frames"] / "spk_a_u1.npy"), mfcc_frames(wav, SR, 8), atol=1e-5)
    n_frames = {p.stem: len(np.load(p)) for p in sorted((folder / slug["model"]).glob("*.npy"))}
    assert len(n_frames) == report.n_utterances == 8
    items = read_item_file(tmp_path / "probe" / "abx.item", n_frames, report.frame_rate)
    assert len(items) == report.n_abx_items  # every item of abx.item has its frames in the export


def test_probe_phonemes_refuses_without_usable_alignments(tmp_path):
    tiny_aligned_corpus(tmp_path / "corpus", bad=False)
    corpus = load_corpus(tmp_path / "corpus", "manifest.jsonl")
    model = build_model(copy.deepcopy(KWARGS)).eval()
    with pytest.raises(UserError, match="no utterance of split valid .* has a phone alignment"):
        probe_phonemes(model, corpus, SR, tmp_path / "probe", split="valid", progress=False)
    for path in (tmp_path / "corpus").glob("*/u*.psdur"):
        path.write_text("pau:0.1 xx:0.2")
    with pytest.raises(UserError, match="none of the 8 aligned utterances .* is usable .*unknown phone symbol 'xx'"):
        probe_phonemes(model, corpus, SR, tmp_path / "probe", split="test", progress=False)


def test_the_phone_set_decides_which_symbols_are_known(tmp_path):
    tiny_aligned_corpus(tmp_path / "corpus", bad=False)
    odd = tmp_path / "corpus" / "spk_a" / "u1.psdur"  # a symbol outside ARPAbet/TIMIT
    odd.write_text(odd.read_text().replace("ah:", "ɐ:"))
    corpus = load_corpus(tmp_path / "corpus", "manifest.jsonl")
    model = build_model(copy.deepcopy(KWARGS)).eval()
    strict = probe_phonemes(model, corpus, SR, tmp_path / "a", PhoneSet(), split="test", progress=False)
    assert list(strict.skipped) == [str(odd)] and "unknown phone symbol 'ɐ'" in strict.skipped[str(odd)][0]
    lenient = probe_phonemes(model, corpus, SR, tmp_path / "b", PhoneSet(inventory=None), split="test",
                             progress=False)
    assert not lenient.skipped and "ɐ" in lenient.phones and lenient.n_utterances == strict.n_utterances + 1


def test_the_phones_are_read_from_the_named_textgrid_tier(tmp_path):
    from vqspeech.data.alignments import read_alignment, write_textgrid

    tiny_aligned_corpus(tmp_path / "corpus", bad=False)
    manifest = tmp_path / "corpus" / "manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    for row in rows:  # the same phones, in a TextGrid tier called "segments"
        psdur = tmp_path / "corpus" / row["alignment"]
        grid = psdur.with_suffix(".TextGrid")
        write_textgrid(grid, {"segments": read_alignment(psdur)}, duration=0.48)
        row["alignment"] = str(grid.relative_to(tmp_path / "corpus"))
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    corpus = load_corpus(tmp_path / "corpus", "manifest.jsonl")
    model = build_model(copy.deepcopy(KWARGS)).eval()
    report = probe_phonemes(model, corpus, SR, tmp_path / "a", split="test", tier="segments", progress=False)
    assert report.n_utterances == 8 and not report.skipped and report.phones == ["ah", "iy", "m", "s", "sil"]
    with pytest.raises(UserError, match="none of the 8 aligned utterances"):  # no tier called "phones"
        probe_phonemes(model, corpus, SR, tmp_path / "b", split="test", progress=False)


def test_a_continuous_bottleneck_is_probed_through_k_means_and_says_so(tmp_path):
    tiny_aligned_corpus(tmp_path / "corpus", bad=False)
    corpus = load_corpus(tmp_path / "corpus", "manifest.jsonl")
    kwargs = copy.deepcopy(KWARGS)
    kwargs["model"]["bottleneck"] = {"kind": "ae"}
    model = build_model(kwargs).eval()
    report = probe_phonemes(model, corpus, SR, tmp_path / "probe", PhoneSet(), split="test", progress=False,
                            kmeans_k=12)
    assert report.model_codes.startswith("k-means (K = 12) on its continuous ae latents")
    assert report.codebook_size == 12  # the MFCC k-means baseline at the same K
    assert "fitted on the frames of the" in report.model_codes
    assert report.model_codes in (tmp_path / "probe" / "probe.md").read_text()
    used = report.metrics["used_codes"][0]
    assert used is not None and 1 < used <= 16  # k-means codes, not the latents themselves
