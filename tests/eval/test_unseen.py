"""Any-to-any over held-out speakers: the two pieces never overlap, every pair is generated and scored, the
shares are shares, and a table model falls back to the nearest training voice."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from vqspeech.cli import main
from vqspeech.data.corpus import load_corpus
from vqspeech.eval.unseen import evaluate_unseen, heldout_pieces
from vqspeech.runs import load_run

HELD = ("new_x", "new_y", "new_z")
TINY_SAMPLE_RATE = 16000


def voice(index: int, seconds: float = 3.0) -> np.ndarray:
    """A held-out 'voice': a sine pair at its own pitch under a slow envelope, plus a little noise."""
    rng = np.random.default_rng(index)
    t = np.arange(int(seconds * TINY_SAMPLE_RATE)) / TINY_SAMPLE_RATE
    f0 = 140.0 + 60.0 * index
    wav = (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2) * (0.4 * np.sin(2 * np.pi * f0 * t)
                                                          + 0.2 * np.sin(2 * np.pi * 2.7 * f0 * t))
    return (wav + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def corpus_with_heldout(tiny_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("heldout_corpus")
    shutil.copytree(tiny_corpus, root, dirs_exist_ok=True)
    shutil.rmtree(root / "speaker_vectors", ignore_errors=True)
    rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    for s, speaker in enumerate(HELD):
        (root / speaker).mkdir()
        wav = voice(s)  # 3 s: halves of 1.5 s
        sf.write(str(root / speaker / "only.wav"), wav, TINY_SAMPLE_RATE)
        rows.append({"path": f"{speaker}/only.wav", "speaker": speaker, "utterance": "only", "split": "heldout"})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def train(demo_recipe, root, run_dir, *extra):
    assert main(["train", str(demo_recipe), "+debug=tiny", f"data.root={root}", f"run_dir={run_dir}",
                 "train.device=cpu", "train.audio_every=null", *extra, "-q"]) == 0
    return load_run(run_dir)


def test_the_reference_half_never_overlaps_the_identification_half(corpus_with_heldout):
    corpus = load_corpus(corpus_with_heldout, "manifest.jsonl")
    pieces = heldout_pieces(corpus)
    assert [p[0] for p in pieces] == list(HELD)
    for _, a, b in pieces:
        assert a.path == b.path and a.start is None and b.end is None and a.end == b.start > 0


@pytest.mark.parametrize("kind", ["reference", "table"])
def test_any_to_any_scores_every_pair(demo_recipe, corpus_with_heldout, tmp_path, kind):
    run = train(demo_recipe, corpus_with_heldout, tmp_path / "run", f"speaker={kind}")
    corpus = load_corpus(corpus_with_heldout, "manifest.jsonl")
    report = evaluate_unseen(run.model, corpus, tmp_path / "unseen", targets_per_source=2, max_seconds=1.0,
                             asr=kind == "reference", progress=False)
    assert report.speakers == list(HELD) and report.chance == pytest.approx(1 / 3)
    assert report.converted.outputs == 6 and report.reconstructed.outputs == 3
    pairs = {(o.source, o.target) for o in report.outputs}
    assert len(pairs) == 9  # every source to itself and to both others
    for group, rows in ((report.converted, [o for o in report.outputs if o.source != o.target]),
                        (report.reconstructed, [o for o in report.outputs if o.source == o.target])):
        # each summary is its outputs' mean, judge by judge (not merely a number in range)
        assert group.outputs == len(rows)
        assert group.identified_as_target == pytest.approx(np.mean([o.identified == o.target for o in rows]))
        assert group.classified_as_target == pytest.approx(np.mean([o.predicted == o.target for o in rows]))
        assert group.identified_as_source == pytest.approx(np.mean([o.identified == o.source for o in rows]))
        assert group.cosine_target == pytest.approx(np.mean([o.cosine_target for o in rows]))
        assert group.cosine_source == pytest.approx(np.mean([o.cosine_source for o in rows]))
    assert all(o.identified in HELD and o.predicted in HELD for o in report.outputs)
    # a reconstruction's target is its source: the two cosines are one number
    assert all(o.cosine_target == o.cosine_source for o in report.outputs if o.source == o.target)
    if kind == "reference":
        assert all(o.voice == "reference" for o in report.outputs)
        assert report.converted.asr_agreement_error is None or report.converted.asr_agreement_error >= 0
    else:  # a table model speaks in training voices only
        assert {o.voice for o in report.outputs} <= {"spk_a", "spk_b", "spk_c"}
    saved = json.loads((tmp_path / "unseen" / "unseen.json").read_text())
    assert len(saved["outputs"]) == 9
    for o in saved["outputs"]:
        assert sf.info(str(tmp_path / "unseen" / o["wav"])).frames == pytest.approx(TINY_SAMPLE_RATE, abs=64)
    assert "chance 0.333" in (tmp_path / "unseen" / "unseen.md").read_text()


def make_new_readers(base):
    """A LibriSpeech-layout folder of 3 readers the model never heard, 2 utterances (1.5 s) each."""
    root = base / "LibriSpeech" / "test-clean"
    for s, speaker in enumerate(("701", "702", "703")):
        folder = root / speaker / "1"
        folder.mkdir(parents=True)
        wav = voice(s, seconds=3.0)
        for n in range(2):
            sf.write(str(folder / f"{speaker}-1-{n:04d}.flac"), wav[n * 24000:(n + 1) * 24000], TINY_SAMPLE_RATE)
        (folder / f"{speaker}-1.trans.txt").write_text("".join(f"{speaker}-1-{n:04d} WORDS\n" for n in range(2)))
    return base / "LibriSpeech"


def test_a_run_is_scored_on_an_evaluation_only_corpus_of_new_readers(demo_recipe, corpus_with_heldout, tmp_path,
                                                                    capsys, tiny_prior):
    """prepare --all-heldout makes a corpus with no training speaker; evaluate-conversion --unseen --data-root
    scores a run on it, each reader's converted piece and reference from different utterances. The run is a
    pitch-stream model trained with perturbation (the tiny end-to-end run of both levers)."""
    source = make_new_readers(tmp_path)
    other = tmp_path / "other"
    assert main(["prepare", "librispeech", "--root", str(source), "--out", str(other), "--workers", "1", "-q"]) == 2
    assert "--all-heldout" in capsys.readouterr().err  # every reader is test-clean: none left to train on
    assert main(["prepare", "librispeech", "--root", str(source), "--out", str(other), "--all-heldout",
                 "--workers", "1", "-q"]) == 0
    corpus = load_corpus(other, "manifest.jsonl")
    assert {u.split for u in corpus.utterances} == {"heldout"} and len(corpus.split("heldout")) == 6
    pieces = heldout_pieces(corpus)
    assert all(a.path != b.path for _, a, b in pieces)  # two utterances: never the same audio

    run_dir = tmp_path / "run"
    run = train(demo_recipe, corpus_with_heldout, run_dir, "speaker=reference", "decoder=parallel",
                "model.pitch.levels=16", "model.pitch.hop=640", "model.perturb.variants=2")
    assert run.model.pitch is not None and (run.model.pitch_registers[:, 1] > 0).all()
    assert (corpus_with_heldout / "perturbation").is_dir()
    assert main(["evaluate-conversion", "--run", str(run_dir), "--unseen", "--data-root", str(other), "--no-asr",
                 "--targets", "1", "--seconds", "1", "--out", str(tmp_path / "scored"), "-q"]) == 0
    saved = json.loads((tmp_path / "scored" / "unseen.json").read_text())
    assert {o["source"] for o in saved["outputs"]} == {"701", "702", "703"} and len(saved["outputs"]) == 6

    short = tmp_path / "short.wav"
    sf.write(str(short), np.concatenate([voice(0, 0.1), np.zeros(16000, np.float32)]), TINY_SAMPLE_RATE)
    code = main(["convert", str(source / "test-clean/701/1/701-1-0000.flac"), "--run", str(run_dir),
                 "--reference", str(short), "-o", str(tmp_path / "out.wav"), "-q"])
    err = capsys.readouterr().err
    assert code != 0 and "too little to measure its pitch" in err and "Traceback" not in err

    # a training voice speaks in its stored register; a .vqs file carries the pitch stream through the codec
    source_wav = source / "test-clean/701/1/701-1-0000.flac"
    assert main(["convert", str(source_wav), "--run", str(run_dir), "--speaker", "spk_b", "-o",
                 str(tmp_path / "to_b.wav"), "-q"]) == 0
    assert sf.info(str(tmp_path / "to_b.wav")).frames == sf.info(str(source_wav)).frames
    assert main(["train-prior", "--run", str(run_dir), "train.max_steps=2", *tiny_prior, "-q"]) == 0
    assert main(["compress", "--run", str(run_dir), str(source_wav), "-o", str(tmp_path / "a.vqs"), "-q"]) == 0
    from vqspeech.codec import read_vqs

    header, _ = read_vqs(tmp_path / "a.vqs")
    pitch = run.model.encode_pitch(sf.read(str(source_wav), dtype="float32")[0])
    assert header.version == 3 and list(header.pitch) == pitch.codes.tolist() and header.pitch_bits == 4
    assert header.register == pytest.approx(tuple(pitch.register.tolist()), abs=2e-3)  # float16
    assert main(["decompress", "--run", str(run_dir), str(tmp_path / "a.vqs"), "-o", str(tmp_path / "a.wav"),
                 "--speaker", "spk_a", "-q"]) == 0
    assert sf.info(str(tmp_path / "a.wav")).frames == header.frames * run.model.hop_length

    # reconstruct in the file's own voice; sample is refused in one line (the prior has no pitch)
    assert main(["reconstruct", str(source_wav), "--run", str(run_dir), "-o", str(tmp_path / "re.wav"), "-q"]) == 0
    # the run report scores latent usage with the pitch stream kept (it raised a channel mismatch before)
    assert main(["report", "--run", str(run_dir), "--samples", "1", "--seconds", "0.2", "-q"]) == 0
    usage = json.loads((run_dir / "report" / "report.json").read_text())["latent_usage"]["loss"]
    assert len(usage) >= 3 and all(np.isfinite(v) for v in usage.values())
    assert sf.info(str(tmp_path / "re.wav")).frames == sf.info(str(source_wav)).frames
    code = main(["sample", "--run", str(run_dir), "--speaker", "spk_a", "--seconds", "0.1", "-n", "1",
                 "-o", str(tmp_path / "samples"), "--no-dnsmos", "-q"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "pitch stream" in errors[0] and "Traceback" not in err

    # the Python API: convert to a reference, and decode() needs the melody's source
    import vqspeech
    from vqspeech.errors import UserError

    model = vqspeech.load(run_dir, device="cpu")
    wav = sf.read(str(source_wav), dtype="float32")[0]
    reference = sf.read(str(source / "test-clean/702/1/702-1-0001.flac"), dtype="float32")[0]
    out = model.convert(wav, reference=reference)
    assert out.shape == wav.shape and np.isfinite(out).all()
    with pytest.raises(UserError, match="pitch stream"):
        model.decode(model.encode(wav), speaker="spk_a")
    assert model.decode(model.encode(wav), speaker="spk_a", pitch_of=wav).shape[0] % run.model.hop_length == 0
