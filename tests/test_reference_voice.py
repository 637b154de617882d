"""speaker=reference end to end on the tiny corpus: training caches the speakers' mean vectors in the
checkpoint, --speaker and --list-speakers still work, --reference speaks any voice, and every bad
reference is a one-line error."""

import numpy as np
import pytest
import soundfile as sf
import torch

from vqspeech.cli import main
from vqspeech.runs import load_run

SR = 16000


def speech_like(seconds: float, seed: int = 0, f0: float = 180.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * f0 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
            + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


def test_a_reference_model_round_trips_through_its_checkpoint_with_the_speakers_mean_vectors(reference_run,
                                                                                             tiny_corpus):
    from vqspeech.data.corpus import load_corpus
    from vqspeech.data.dataset import load_split
    from vqspeech.data.speaker_vectors import SpeakerEncoder, cached_segments, mean_vector

    run = load_run(reference_run)
    speakers = run.model.speakers
    assert speakers.kind == "reference" and speakers.names == ["spk_a", "spk_b", "spk_c"]
    assert run.model.loudness_lufs == -20 and run.model.sample_rate == SR
    corpus = load_corpus(tiny_corpus, "manifest.jsonl")
    train = load_split(corpus.split("train"), speakers.names, SR, progress=False, loudness_lufs=-20)
    encoder = SpeakerEncoder(SR, speakers.segment_seconds)
    segments = cached_segments(encoder, [(u.path, u.part) for u in train.utterances], train.waves,
                               tiny_corpus / "speaker_vectors")
    for i, name in enumerate(speakers.names):
        expected = mean_vector(np.concatenate([s.vectors for s, spk in zip(segments, train.speaker_ids) if spk == i]))
        np.testing.assert_allclose(speakers.means[i].numpy(), expected, atol=1e-5)
    # the same model conditioned on a speaker's name and on that speaker's mean vector is the same decoder input
    ids = speakers.ids(["spk_b"])
    torch.testing.assert_close(speakers(ids), speakers(None, speakers.means[ids]))


def test_speaker_names_and_reference_audio_both_convert(reference_run, tmp_path, capsys):
    src, ref, ref2 = tmp_path / "in.wav", tmp_path / "target.wav", tmp_path / "more.wav"
    sf.write(src, speech_like(0.4), SR)
    sf.write(ref, speech_like(1.5, 1, 240.0), SR)
    sf.write(ref2, speech_like(1.2, 2, 250.0), SR)
    assert main(["convert", "--list-speakers", "--run", str(reference_run), "-q"]) == 0
    assert capsys.readouterr().out.split() == ["spk_a", "spk_b", "spk_c"]
    out = tmp_path / "out"
    assert main(["convert", str(src), "--speaker", "spk_a", "--run", str(reference_run), "-o", str(out), "-q",
                 "--seed", "0"]) == 0
    assert main(["convert", str(src), "--reference", str(ref), str(ref2), "--run", str(reference_run),
                 "-o", str(out), "-q", "--seed", "0"]) == 0
    assert main(["reconstruct", str(src), "--run", str(reference_run), "-o", str(out), "-q"]) == 2  # own audio
    assert "at least 1 s" in capsys.readouterr().err  # … is a reference: 0.4 s is too short for one
    assert main(["reconstruct", str(ref), "--run", str(reference_run), "-o", str(out), "-q"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["in_to_spk_a.wav", "in_to_target.wav", "target_reconstructed.wav"]
    assert sf.info(str(out / "in_to_target.wav")).frames == pytest.approx(0.4 * SR, abs=1)


@pytest.mark.parametrize("kind, message", [
    ("short", "the reference is 0.50 s long; a reference needs at least 1 s of speech"),
    ("silent", "the reference audio is silent"),
    ("unreadable", "cannot read audio"),
    ("missing", "cannot read audio"),
])
def test_each_bad_reference_is_a_one_line_error_naming_the_file(reference_run, tmp_path, capsys, kind, message):
    src = tmp_path / "in.wav"
    sf.write(src, speech_like(0.4), SR)
    ref = tmp_path / f"{kind}.wav"
    if kind == "short":
        sf.write(ref, speech_like(0.5), SR)
    elif kind == "silent":
        sf.write(ref, np.zeros(2 * SR, np.float32), SR)
    elif kind == "unreadable":
        ref.write_text("not audio")
    for command in ("convert", "reconstruct"):
        code = main([command, str(src), "--reference", str(ref), "--run", str(reference_run), "-o",
                     str(tmp_path / "out"), "-q"])
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert code == 2 and "Traceback" not in err
        assert len(lines) == 1 and str(ref) in lines[0] and message in lines[0], err
    assert not (tmp_path / "out").exists()


def test_reference_audio_for_a_table_model_is_a_one_line_error(trained_run, tmp_path, capsys):
    src, ref = tmp_path / "in.wav", tmp_path / "ref.wav"
    sf.write(src, speech_like(0.4), SR)
    sf.write(ref, speech_like(1.5, 1), SR)
    for command in ("convert", "reconstruct"):
        assert main([command, str(src), "--reference", str(ref), "--run", str(trained_run), "-q"]) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert len(err) == 1 and "this one has a speaker table and no reference encoder" in err[0]


def test_speaker_and_reference_together_are_refused(reference_run, tmp_path, capsys):
    src = tmp_path / "in.wav"
    sf.write(src, speech_like(0.4), SR)
    assert main(["convert", str(src), "--speaker", "spk_a", "--reference", str(src), "--run", str(reference_run),
                 "-q"]) == 2
    assert "one target voice" in capsys.readouterr().err


def test_a_learned_speaker_encoder_needs_no_pretrained_model(demo_recipe, tiny_corpus, tmp_path, capsys):
    run_dir = tmp_path / "learned"
    assert main(["train", str(demo_recipe), "+debug=tiny", f"data.root={tiny_corpus}", f"run_dir={run_dir}",
                 "train.device=cpu", "train.audio_every=null", "speaker=learned", "model.speaker.reference_seconds=0.25",
                 "-q"]) == 0
    run = load_run(run_dir)
    speakers = run.model.speakers
    assert speakers.encoder == "learned" and speakers.means.shape == (3, 128)
    assert speakers.means.abs().sum(dim=1).min() > 0  # every training voice has its mean vector
    assert not torch.allclose(speakers.means[0], speakers.means[1])
    src, ref = tmp_path / "in.wav", tmp_path / "ref.wav"
    sf.write(src, speech_like(0.4), SR)
    sf.write(ref, speech_like(1.5, 1, 240.0), SR)
    out = tmp_path / "out"
    assert main(["convert", str(src), "--reference", str(ref), "--run", str(run_dir), "-o", str(out), "-q"]) == 0
    assert main(["convert", str(src), "--speaker", "spk_c", "--run", str(run_dir), "-o", str(out), "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["in_to_ref.wav", "in_to_spk_c.wav"]
