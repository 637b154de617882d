"""Conversion evaluation: mel-cepstral distortion, the speaker classifier, and the whole report on a tiny
untrained model over a tiny parallel corpus."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vqspeech.data.corpus import load_corpus
from vqspeech.data.features import mel_cepstral_distortion, mel_cepstrum
from vqspeech.errors import UserError
from vqspeech.eval.conversion import evaluate_conversion
from vqspeech.eval.speaker_classifier import SpeakerClassifier

SR = 16000
SPEAKERS = ["spk_a", "spk_b", "spk_c"]
VOICES = {"spk_a": (110.0, 700.0), "spk_b": (190.0, 1300.0), "spk_c": (290.0, 2200.0)}  # f0, formant (Hz)


def voice(f0: float, formant: float, seconds: float, seed: int, sweep: float = 0.3) -> np.ndarray:
    """A voiced sound: harmonics of f0 (with slight vibrato) under a formant that glides by ``sweep`` of its
    frequency over the utterance, so stretching ``seconds`` stretches the content; plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    progress = t / seconds
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))) / SR
    centre = formant * (1 + sweep * np.sin(np.pi * progress + rng.uniform(0, 0.5)))
    wav = np.zeros_like(t)
    for k in range(1, int(4000 / f0)):
        wav += np.exp(-(((k * f0 - centre) / 300.0) ** 2)) * np.sin(k * phase) / k ** 0.5
    wav = 0.3 * wav / np.abs(wav).max() * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * progress) ** 2)
    return (wav + 0.005 * rng.standard_normal(len(t))).astype(np.float32)


def test_mel_cepstrum_has_order_coefficients_per_log_mel_frame():
    wav = voice(120, 900, 0.5, 0)
    assert mel_cepstrum(wav, SR).shape == (1 + len(wav) // 256, 24)
    assert mel_cepstrum(wav, SR, order=12).shape == (1 + len(wav) // 256, 12)


def test_mcd_is_zero_for_identical_small_for_a_stretched_copy_and_large_for_another_voice():
    a = voice(120, 900, 1.0, 0)
    stretched = voice(120, 900, 1.15, 0)       # the same content, 15 % slower: DTW lines it up
    delayed = np.concatenate([np.zeros(100, np.float32), a])  # under half a frame late
    other = voice(260, 2000, 1.0, 1)
    assert mel_cepstral_distortion(a, a, SR) == pytest.approx(0.0, abs=1e-9)
    far = mel_cepstral_distortion(a, other, SR)
    assert mel_cepstral_distortion(a, stretched, SR) < 0.3 * far
    assert mel_cepstral_distortion(a, delayed, SR) < 0.3 * far
    assert mel_cepstral_distortion(other, a, SR) == pytest.approx(far, rel=0.05)


def speaker_set(seeds: range) -> tuple[list[np.ndarray], list[int]]:
    waves, labels = [], []
    for label, (f0, formant) in enumerate(VOICES.values()):
        for seed in seeds:
            rng = np.random.default_rng([label, seed])
            waves.append(voice(f0 * rng.uniform(0.93, 1.07), formant * rng.uniform(0.93, 1.07),
                               rng.uniform(0.4, 0.8), seed))
            labels.append(label)
    return waves, labels


def test_speaker_classifier_separates_voices_deterministically_and_ignores_level():
    train_waves, train_labels = speaker_set(range(8))
    test_waves, test_labels = speaker_set(range(100, 104))
    clf = SpeakerClassifier.fit(train_waves, train_labels, n_classes=3, sample_rate=SR)
    assert clf.accuracy(test_waves, test_labels) == 1.0
    again = SpeakerClassifier.fit(train_waves, train_labels, n_classes=3, sample_rate=SR)
    np.testing.assert_array_equal(again.logits(test_waves), clf.logits(test_waves))
    quieter = [0.2 * w for w in test_waves]
    np.testing.assert_array_equal(clf.predict(quieter), clf.predict(test_waves))


def write_corpus(root: Path, utterances: dict[str, dict[str, str]]) -> Path:
    """speaker -> {utterance id -> split}; speaker i has the i-th voice of VOICES. Returns root."""
    rows = []
    for s, (speaker, splits) in enumerate(utterances.items()):
        f0, formant = list(VOICES.values())[s]
        for u, (utterance, split) in enumerate(splits.items()):
            rel = f"{speaker}/{utterance}.wav"
            (root / speaker).mkdir(parents=True, exist_ok=True)
            sf.write(str(root / rel), voice(f0, formant, 0.3 + 0.05 * u, seed=10 * s + u), SR, subtype="PCM_16")
            rows.append({"path": rel, "speaker": speaker, "utterance": utterance, "split": split})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root




def test_evaluate_conversion_writes_the_matrix_and_each_summary_is_its_rows_mean(tmp_path, tiny_model):
    splits = {"u0": "train", "u1": "train", "u2": "train", "u3": "train", "s0": "test", "s1": "test"}
    corpus = load_corpus(write_corpus(tmp_path / "corpus", {spk: splits for spk in SPEAKERS}), "manifest.jsonl")
    model = tiny_model(SPEAKERS)
    out = tmp_path / "report"
    report = evaluate_conversion(model, corpus, SR, out, n_sentences=1, max_seconds=0.2, progress=False)

    assert report.speakers == SPEAKERS and report.parallel and report.sentences == ["s0"]
    wavs = sorted(p.name for p in (out / "wavs").iterdir())
    assert wavs == sorted([f"s0_{a}_to_{b}.wav" for a in SPEAKERS for b in SPEAKERS] +
                          [f"s0_{a}_original.wav" for a in SPEAKERS])  # the listening grid's rows
    for name in wavs:
        info = sf.info(str(out / "wavs" / name))
        assert (info.samplerate, info.frames) == (SR, int(0.2 * SR) // model.hop_length * model.hop_length)
    assert (out / "speaker_confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (out / "conversion.md").read_text()
    assert "| source \\ target |" in text
    # the page's grid: a row per source sentence, its original first, then each target's conversion
    assert [line.split(" | ")[2] for line in text.splitlines() if line.startswith("| spk") and "original" in line] \
        == [f"[original](wavs/s0_{a}_original.wav)" for a in SPEAKERS]
    assert f"[{SPEAKERS[1]}](wavs/s0_{SPEAKERS[0]}_to_{SPEAKERS[1]}.wav)" in text
    assert text.count("<audio") == 0 and (out / "conversion.html").read_text().count("<audio") == 3 + 9
    saved = json.loads((out / "conversion.json").read_text())
    assert saved["target_share"] == report.target_share and len(saved["utterances"]) == 9

    assert report.classifier_train_utterances == 12 and report.classifier_test_utterances == 6
    assert report.classifier_accuracy == 1.0  # the real voices are easy to tell apart
    assert {r.identified for r in report.utterances} <= set(SPEAKERS)
    # each summary is its rows' mean, judge by judge (a wrong group, field or average fails here)
    converted = [r for r in report.utterances if r.source != r.target]
    rebuilt = [r for r in report.utterances if r.source == r.target]
    assert len(converted) == 6 and len(rebuilt) == 3
    expected = {
        "embedding_target_share": np.mean([r.identified == r.target for r in converted]),
        "embedding_source_share": np.mean([r.identified == r.source for r in converted]),
        "embedding_reconstructed_share": np.mean([r.identified == r.target for r in rebuilt]),
        "target_share": np.mean([r.predicted == r.target for r in converted]),
        "source_share": np.mean([r.predicted == r.source for r in converted]),
        "reconstructed_share": np.mean([r.predicted == r.target for r in rebuilt]),
        "similarity_converted": np.mean([r.similarity for r in converted]),
        "similarity_reconstructed": np.mean([r.similarity for r in rebuilt]),
        "code_agreement_converted": np.mean([r.code_agreement for r in converted]),
        "code_agreement_reconstructed": np.mean([r.code_agreement for r in rebuilt]),
        "mcd_converted": np.mean([r.mcd for r in converted]),
        "mcd_source": np.mean([r.mcd_source for r in converted]),
        "mcd_reconstructed": np.mean([r.mcd for r in rebuilt]),
    }
    for name, value in expected.items():
        assert getattr(report, name) == pytest.approx(value), name
    # every output was re-encoded (a discrete model), so no agreement is missing from the means
    assert all(r.code_agreement is not None for r in report.utterances)
    confusion = np.array(report.confusion)
    assert confusion.shape == (3, 3) and confusion.sum() == 6  # the src ≠ tgt outputs
    assert confusion.sum(axis=1).tolist() == [2, 2, 2]       # each target receives 2 sources
    rows = {(r.source, r.target): r for r in report.utterances}
    assert len(rows) == 9 and all(rows[s, s].mcd_source is None for s in SPEAKERS)
    assert all(r.mcd_source is not None for r in report.utterances if r.source != r.target)


@pytest.mark.parametrize("second_test_id, parallel", [("p2_003", True), ("p2_005", False)])
def test_vctk_style_ids_pair_up_by_sentence_number_else_no_mcd(tmp_path, tiny_model, second_test_id, parallel):
    """VCTK stems carry the speaker (p225_003): the sentence is the part after the first "_"."""
    utterances = {"p1": {"p1_001": "train", "p1_002": "train", "p1_003": "test"},
                  "p2": {"p2_001": "train", "p2_002": "train", second_test_id: "test"}}
    corpus = load_corpus(write_corpus(tmp_path / "corpus", utterances), "manifest.jsonl")
    out = tmp_path / "report"
    report = evaluate_conversion(tiny_model(["p1", "p2"]), corpus, SR, out, n_sentences=1, max_seconds=0.1,
                                 progress=False)
    assert report.parallel is parallel
    if parallel:
        converted = [r for r in report.utterances if r.source != r.target]
        assert report.sentences == ["003"]
        assert report.mcd_converted == pytest.approx(np.mean([r.mcd for r in converted]))
        assert report.mcd_source == pytest.approx(np.mean([r.mcd_source for r in converted])) and report.mcd_source > 0
        expected = {f"003_{a}_to_{b}.wav" for a in ("p1", "p2") for b in ("p1", "p2")}
        expected |= {f"003_{a}_original.wav" for a in ("p1", "p2")}
    else:  # each speaker's own held-out utterance, converted to both voices
        assert report.sentences == ["p1_003", "p2_005"]
        assert report.mcd_converted is None and report.mcd_source is None and report.mcd_reconstructed is None
        assert all(r.mcd is None for r in report.utterances)
        expected = {f"p1_003_p1_to_{b}.wav" for b in ("p1", "p2")} | {f"p2_005_p2_to_{b}.wav" for b in ("p1", "p2")}
        expected |= {"p1_003_p1_original.wav", "p2_005_p2_original.wav"}
    assert {p.name for p in (out / "wavs").iterdir()} == expected
    assert report.similarity_same_speaker is None  # one held-out utterance per speaker: nothing to compare


def test_fewer_than_two_usable_speakers_is_a_user_error(tmp_path, tiny_model):
    utterances = {spk: {"u0": "train", "s0": "test"} for spk in ("spk_a", "spk_b")}
    corpus = load_corpus(write_corpus(tmp_path / "corpus", utterances), "manifest.jsonl")
    with pytest.raises(UserError, match="at least 2"):
        evaluate_conversion(tiny_model(["spk_a", "someone_else"]), corpus, SR, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_identification_takes_the_nearest_centroid_without_the_sentence_itself():
    from vqspeech.eval.conversion import _identify

    def unit(*v):
        v = np.array(v, dtype=float)
        return v / np.linalg.norm(v)

    references = {"a": [("s0", unit(1, 0, 0)), ("s1", unit(1, 0.2, 0))],
                  "b": [("s0", unit(0, 1, 0)), ("s1", unit(0.9, 0.1, 0.9))]}
    assert _identify(unit(1, 0.1, 0), references, "s9") == "a"
    assert _identify(unit(0, 1, 0.1), references, "s9") == "b"
    # b's centroid without s1 is (0, 1, 0): an output of sentence s1 near b's s1 rendering is not matched
    # against that rendering itself, so it goes to a, whose centroid without s1 is (1, 0, 0)
    assert _identify(unit(0.9, 0.1, 0.8), references, "s1") == "a"
    assert _identify(unit(0.9, 0.1, 0.8), references, "s0") == "b"
