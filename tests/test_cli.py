"""The command line: user errors are one line and exit status 2; train → report end to end; prepare demo."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from vqspeech.cli import main

needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")


def assert_one_line_error(code: int, stderr: str, *fragments: str) -> None:
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0]


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """The installed console script when there is one beside this interpreter, else ``python -m vqspeech``."""
    script = Path(sys.executable).with_name("vqspeech")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "vqspeech"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_missing_recipe_is_a_one_line_error(tmp_path, capsys):
    code = main(["train", str(tmp_path / "recipes" / "nope"), "+debug=tiny"])
    assert_one_line_error(code, capsys.readouterr().err, "no recipe at", "nope")


def test_missing_recipe_is_a_one_line_error_in_a_subprocess(tmp_path):
    proc = run_cli(["train", "recipes/nope"], cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, "no recipe at recipes/nope")
    assert proc.stdout == ""


def test_unknown_override_key_is_a_one_line_error(demo_recipe, tmp_path, capsys):
    code = main(["train", str(demo_recipe), "+debug=tiny", "train.max_stepz=3", f"run_dir={tmp_path / 'run'}"])
    assert_one_line_error(code, capsys.readouterr().err, "'train.max_stepz'")
    assert not (tmp_path / "run").exists()


def test_unknown_override_key_is_a_one_line_error_with_python_m(demo_recipe, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "vqspeech", "train", str(demo_recipe), "modle.encoder.channels=8"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert_one_line_error(proc.returncode, proc.stderr, "'modle.encoder.channels'")


def test_corpus_without_audio_is_a_one_line_error(demo_recipe, tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / "speaker").mkdir(parents=True)
    code = main(["train", str(demo_recipe), "+debug=tiny", f"data.root={empty}", "data.manifest=null",
                 f"run_dir={tmp_path / 'run'}", "train.device=cpu"])
    assert_one_line_error(code, capsys.readouterr().err, "no audio", str(empty))


def test_missing_corpus_folder_is_a_one_line_error(demo_recipe, tmp_path, capsys):
    code = main(["train", str(demo_recipe), "+debug=tiny", f"data.root={tmp_path / 'nowhere'}",
                 f"run_dir={tmp_path / 'run'}", "-q"])
    assert_one_line_error(code, capsys.readouterr().err, "does not exist")


def test_a_run_dir_that_is_a_file_or_a_bad_sample_rate_is_a_one_line_error(demo_recipe, tiny_corpus, tmp_path,
                                                                          capsys):
    mine = tmp_path / "notes.txt"
    mine.write_text("mine")
    code = main(["train", str(demo_recipe), "+debug=tiny", f"data.root={tiny_corpus}", f"run_dir={mine}", "-q"])
    assert_one_line_error(code, capsys.readouterr().err, "Not a directory", str(mine), "run_dir=")
    assert mine.read_text() == "mine"
    code = main(["train", str(demo_recipe), "+debug=tiny", f"data.root={tiny_corpus}", "data.sample_rate=0",
                 f"run_dir={tmp_path / 'run'}", "-q"])
    assert_one_line_error(code, capsys.readouterr().err, "data.sample_rate must be a positive number of Hz, got 0")


def test_report_without_a_trained_run_is_a_one_line_error(tmp_path, capsys):
    code = main(["report", "--run", str(tmp_path / "run"), "-q"])
    assert_one_line_error(code, capsys.readouterr().err, "holds no checkpoint")


def test_train_then_report_end_to_end(demo_recipe, tiny_corpus, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", str(demo_recipe), "+debug=tiny", f"data.root={tiny_corpus}", f"run_dir={run_dir}",
                 "-q"]) == 0
    out = capsys.readouterr().out
    assert f"trained {run_dir} to step 2 (from 0)" in out
    assert (run_dir / "checkpoints" / "last.pt").is_file()

    assert main(["report", "--run", str(run_dir), "--samples", "1", "--seconds", "0.1", "-q"]) == 0
    out = capsys.readouterr().out
    report_dir = run_dir / "report"
    markdown = (report_dir / "report.md").read_text()
    assert markdown in out
    assert "(step 2)" in markdown and "| test utterances | 3 |" in markdown
    wavs = sorted(report_dir.glob("*.wav"))
    assert [w.name for w in wavs] == ["spk_a_u5_original.wav", "spk_a_u5_reconstructed.wav"]
    for wav in wavs:
        info = sf.info(str(wav))
        assert (info.samplerate, info.channels, info.frames) == (16000, 1, 1600)


@needs_flite
@pytest.mark.parametrize("sentences", [3, 21])
def test_prepare_demo_then_again_reports_already_there(tmp_path, capsys, sentences):
    out_dir = tmp_path / "demo"
    held_out = ["--valid", "1", "--test", "1"] if sentences < 21 else []
    args = ["prepare", "demo", "--out", str(out_dir), "--sentences", str(sentences), *held_out, "-q"]
    code = main(args)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    n = 4 * sentences
    assert f"{n} utterances ({n} made, 0 already there)" in captured.out
    assert len(list(out_dir.glob("*/*.wav"))) == n

    assert main(args) == 0
    assert f"{n} utterances (0 made, {n} already there)" in capsys.readouterr().out


def test_probe_phonemes_on_a_corpus_without_alignments_is_a_one_line_error(demo_recipe, tiny_corpus, tmp_path,
                                                                         capsys):
    run_dir = tmp_path / "run"
    assert main(["train", str(demo_recipe), "+debug=tiny", f"data.root={tiny_corpus}", f"run_dir={run_dir}",
                 "-q"]) == 0
    capsys.readouterr()
    assert main(["probe-phonemes", "--run", str(run_dir), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and "alignment" in err[-1]


def test_overrides_after_an_option_still_reach_hydra_and_stray_arguments_are_refused(demo_recipe, tmp_path,
                                                                                      capsys):
    # the override lands in the config: an unknown key placed after -q is named just as before it
    assert main(["train", str(demo_recipe), "-q", "train.no_such_key=1", f"run_dir={tmp_path / 'r'}"]) == 2
    assert "unknown config key 'train.no_such_key'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["report", "--run", str(tmp_path), "stray=1"])  # only train takes overrides
    assert exc.value.code == 2
    assert "unrecognized arguments: stray=1" in capsys.readouterr().err


def test_progress_bars_refresh_every_half_minute_when_stderr_is_a_log():
    import io

    from tqdm import tqdm

    from vqspeech.cli import LOG_BAR_SECONDS, quiet_bars_in_logs

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert quiet_bars_in_logs(Terminal()) is False
    assert quiet_bars_in_logs(io.StringIO()) is True
    out = io.StringIO()
    bar = tqdm(total=10, file=out)
    assert (bar.mininterval, bar.maxinterval) == (LOG_BAR_SECONDS, LOG_BAR_SECONDS) == (30, 30)
    bar.close()
    assert tqdm(total=10, file=out, mininterval=1).mininterval == 1  # a bar's own setting still wins
