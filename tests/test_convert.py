"""`vqspeech convert`: any input format, batch with bad files, no silent overwrite, loudness matching; one-line
errors for bad options of the commands that load a run."""

import numpy as np
import pytest
import soundfile as sf

from vqspeech.cli import main
from vqspeech.convert import output_paths
from vqspeech.data.audio import match_loudness
from vqspeech.errors import UserError


def speech_like(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
            + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


def test_converts_stereo_48k_flac_and_reports_bad_files_while_converting_the_rest(trained_run, tmp_path, capsys):
    good = tmp_path / "in48k.flac"
    stereo = np.stack([speech_like(0.3, 48000), speech_like(0.3, 48000, 1)], axis=1)
    sf.write(good, stereo, 48000)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(8000, np.float32), 16000)
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio")
    out = tmp_path / "out"
    code = main(["convert", str(good), str(silent), str(junk), "--speaker", "spk_b", "--run", str(trained_run),
                 "-o", str(out), "--seed", "0", "-q"])
    captured = capsys.readouterr()
    assert code == 2
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "silent.wav" in errors[0] and "junk.wav" in errors[1]
    assert "Traceback" not in captured.err
    written = out / "in48k_to_spk_b.wav"
    info = sf.info(str(written))
    assert (info.samplerate, info.channels) == (16000, 1)
    assert abs(info.frames - 0.3 * 16000) <= 1
    assert sorted(p.name for p in out.iterdir()) == ["in48k_to_spk_b.wav"]  # no temp files, nothing else


def test_never_overwrites_without_the_flag(trained_run, tmp_path, capsys):
    src = tmp_path / "a.wav"
    sf.write(src, speech_like(0.2, 16000), 16000)
    target = tmp_path / "mine.wav"
    target.write_bytes(b"user data")
    args = ["convert", str(src), "--speaker", "spk_a", "--run", str(trained_run), "-o", str(target), "-q"]
    assert main(args) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert target.read_bytes() == b"user data"
    assert main([*args, "--overwrite"]) == 0
    assert sf.info(str(target)).samplerate == 16000


def test_unknown_speaker_lists_the_known_ones(trained_run, tmp_path, capsys):
    src = tmp_path / "a.wav"
    sf.write(src, speech_like(0.2, 16000), 16000)
    assert main(["convert", str(src), "--speaker", "p999", "--run", str(trained_run), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: unknown speaker 'p999'; this model knows: spk_a, spk_b, spk_c"


def test_list_speakers(trained_run, capsys):
    assert main(["convert", "--list-speakers", "--run", str(trained_run), "-q"]) == 0
    assert capsys.readouterr().out.split() == ["spk_a", "spk_b", "spk_c"]


def test_same_stems_get_distinct_outputs(tmp_path):
    from pathlib import Path

    paths = output_paths([Path("slt/s1.wav"), Path("awb/s1.wav"), Path("x/s2.wav")], "rms", tmp_path)
    assert [p.name for p in paths] == ["slt_s1_to_rms.wav", "awb_s1_to_rms.wav", "s2_to_rms.wav"]
    assert output_paths([Path("a.wav")], "rms", tmp_path / "b.wav") == [tmp_path / "b.wav"]


def test_loudness_matching_brings_output_to_the_input_loudness():
    import pyloudnorm

    sr = 16000
    reference = speech_like(1.0, sr)
    quiet = 0.05 * speech_like(1.0, sr, 3)
    matched = match_loudness(quiet, reference, sr)
    meter = pyloudnorm.Meter(sr)
    assert abs(meter.integrated_loudness(matched) - meter.integrated_loudness(reference)) < 0.5
    short = match_loudness(quiet[:1000], reference[:1000], sr)  # below the meter's block: RMS match
    np.testing.assert_allclose(np.sqrt((short ** 2).mean()), np.sqrt((reference[:1000] ** 2).mean()), rtol=1e-4)


def test_one_wav_output_for_several_inputs_is_refused(tmp_path):
    from pathlib import Path

    with pytest.raises(UserError, match="names one .wav file, but 2 inputs were given; name a folder"):
        output_paths([Path("a.wav"), Path("b.wav")], "rms", tmp_path / "out.wav")


@pytest.mark.parametrize("args, message", [
    (["convert", "IN", "--speaker", "spk_a", "--segment-seconds", "0"], "--segment-seconds must be positive"),
    (["reconstruct", "IN", "--speaker", "spk_a", "--segment-seconds", "-1"], "--segment-seconds must be positive"),
    (["convert", "IN", "--speaker", "spk_a", "--temperature", "0"], "temperature must be positive, got 0.0"),
    (["reconstruct", "IN", "--speaker", "spk_a", "--top-p", "0"], "top_p must lie in (0, 1], got 0.0"),
    (["convert", "IN", "--speaker", "spk_a", "--top-p", "1.5"], "top_p must lie in (0, 1], got 1.5"),
    (["convert", "IN", "--speaker", "spk_a", "--loud-temperature", "-1"], "loud temperature must be positive"),
    (["reconstruct", "IN", "--loud-temperature", "0.7", "--loud-db", "3"], "must be below 0, got 3.0"),
    (["convert", "IN", "IN", "--speaker", "spk_a", "-o", "OUT/x.wav"], "names one .wav file, but 2 inputs"),
    (["reconstruct", "MISSING", "-o", "OUT"], "MISSING: cannot read audio"),
    (["evaluate-conversion", "--sentences", "0"], "--sentences must be at least 1 and --seconds positive"),
    (["evaluate-conversion", "--seconds", "-1"], "--sentences must be at least 1 and --seconds positive"),
    (["evaluate-conversion", "--unseen"], "holds 0 held-out speaker(s) (split heldout); unseen voices need at least 2"),
    (["evaluate-reconstruction", "--unseen"], "holds 0 held-out speaker(s) (split heldout)"),
    (["probe-phonemes", "--max-utterances", "0"], "--max-utterances must be at least 1, got 0"),
    (["report", "--seconds", "-1"], "--samples must be 0 or more and --seconds positive"),
    (["report", "--samples", "-1"], "--samples must be 0 or more and --seconds positive"),
    (["report", "--seconds", "0.001"], "--seconds 0.001 is shorter than one code"),
])
def test_bad_numbers_and_paths_are_one_line_errors(trained_run, tmp_path, capsys, args, message):
    src = tmp_path / "a.wav"
    sf.write(src, speech_like(0.2, 16000), 16000)
    names = {"IN": str(src), "MISSING": str(tmp_path / "misc" / "gone.wav"), "OUT": str(tmp_path / "out")}
    args = [names.get(a, a.replace("OUT", str(tmp_path / "out"))) for a in args]
    assert main([*args, "--run", str(trained_run), "-q"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    error = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and message.replace("MISSING", names["MISSING"]) in error[0], err
    assert not (tmp_path / "out").exists()
