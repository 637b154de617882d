"""Shared fixtures: a tiny synthetic corpus (no flite), the demo recipe composed small, real VCTK excerpts.

repo_root       the repository root, resolved from this file (tests do not depend on the working directory).
demo_recipe     recipes/demo under it.
tiny_corpus     3 speakers × 6 utterances of 0.5–1 s synthetic 16 kHz audio, root/<speaker>/*.wav and
                manifest.jsonl (4 train, 1 valid, 1 test per speaker); session-scoped, treat as read-only.
tiny_overrides  overrides that point recipes/demo at a corpus and a run folder, with +debug=tiny, on CPU.
tiny_config     recipes/demo composed with those overrides (and any extra ones).
trained_run     a run folder trained for 2 steps on tiny_corpus (+debug=tiny, CPU), one per test module;
                commands that load a run (convert, reconstruct, probe-phonemes, ...) use it read-only.
vctk_mini       the VCTK excerpt (wav16/pXXX/pXXX_NNN.wav), from --vctk-mini or VQSPEECH_VCTK_MINI;
                the test is skipped when it is absent.
Torch runs one intra-op thread for the whole session (see _one_torch_thread).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_RECIPE = REPO_ROOT / "recipes" / "demo"
DEFAULT_VCTK_MINI = REPO_ROOT.parent / "shared" / "data" / "vctk-mini"

TINY_SAMPLE_RATE = 16000
TINY_SPEAKERS = ("spk_a", "spk_b", "spk_c")  # sorted, as Corpus.speakers returns them
TINY_SPLITS = ("train", "train", "train", "train", "valid", "test")  # per speaker, utterances u0..u5


def pytest_addoption(parser):
    parser.addoption("--vctk-mini", default=None,
                     help="folder of the VCTK excerpt (wav16/pXXX/pXXX_NNN.wav); default $VQSPEECH_VCTK_MINI, "
                          f"else {DEFAULT_VCTK_MINI}")
    parser.addoption("--screenshots", default=None,
                     help="folder for the browser tests' screenshots of report pages (default: a temp folder)")
    parser.addoption("--pages", nargs="*", default=[],
                     help="more report pages (.html) for tests/test_browser.py to open and screenshot")


_OUTCOME_TABLES = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def outcome_tables(request) -> dict[str, list[str]]:
    """Title -> lines of a table a test module collects; shown at the end of the run with -s or -v."""
    return request.config.stash.setdefault(_OUTCOME_TABLES, {})


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if config.getoption("capture") != "no" and config.getoption("verbose") <= 0:
        return
    for title, lines in config.stash.get(_OUTCOME_TABLES, {}).items():
        terminalreporter.write_sep("-", title)
        for line in lines:
            terminalreporter.write_line(line)


def synth_utterance(speaker_index: int, utterance_index: int, sample_rate: int = TINY_SAMPLE_RATE) -> np.ndarray:
    """0.5–1 s of float32 audio in [-1, 1]: a speaker-specific sine pair under an amplitude envelope, plus noise."""
    rng = np.random.default_rng([speaker_index, utterance_index])
    seconds = 0.5 + 0.5 * rng.random()
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = (110.0, 180.0, 260.0)[speaker_index % 3] * (1 + 0.05 * utterance_index)
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * (2 + utterance_index) * t) ** 2
    wav = envelope * (0.4 * np.sin(2 * np.pi * f0 * t) + 0.2 * np.sin(2 * np.pi * 2.7 * f0 * t))
    wav += (0.02 + 0.03 * speaker_index) * rng.standard_normal(len(t))
    return np.clip(wav, -1, 1).astype(np.float32)


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """The models under test are tiny: intra-op threads only add overhead, and on a machine whose cores are
    busy (a training job alongside the tests) they make each step ~100× slower through oversubscription."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """train.precision=auto's measurements go to a cache of the session's own, not the user's."""
    previous = os.environ.get("VQSPEECH_CACHE_DIR")
    os.environ["VQSPEECH_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        del os.environ["VQSPEECH_CACHE_DIR"]
    else:
        os.environ["VQSPEECH_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def demo_recipe() -> Path:
    return DEMO_RECIPE


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """Root of a 3-speaker × 6-utterance synthetic corpus with manifest.jsonl (see the module docstring)."""
    root = tmp_path_factory.mktemp("tiny_corpus")
    rows = []
    for s, speaker in enumerate(TINY_SPEAKERS):
        (root / speaker).mkdir()
        for u, split in enumerate(TINY_SPLITS):
            rel = f"{speaker}/u{u}.wav"
            sf.write(str(root / rel), synth_utterance(s, u), TINY_SAMPLE_RATE, subtype="PCM_16")
            rows.append({"path": rel, "speaker": speaker, "utterance": f"u{u}", "split": split})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.fixture
def tiny_overrides():
    """``make(root, run_dir, *extra)``: Hydra overrides for recipes/demo on a small corpus, CPU, +debug=tiny."""

    def make(root, run_dir, *extra: str) -> list[str]:
        return ["+debug=tiny", f"data.root={root}", f"run_dir={run_dir}", "train.device=cpu", *extra]

    return make


@pytest.fixture
def tiny_config(tiny_corpus, tiny_overrides, tmp_path):
    """``make(*extra, root=tiny_corpus, run_dir=tmp_path / "run")``: recipes/demo composed tiny."""
    from vqspeech.config import compose_recipe

    def make(*extra: str, root=tiny_corpus, run_dir=None):
        run_dir = tmp_path / "run" if run_dir is None else run_dir
        return compose_recipe(DEMO_RECIPE, tiny_overrides(root, run_dir, *extra))

    return make


@pytest.fixture(scope="module")
def trained_run(demo_recipe, tiny_corpus, tmp_path_factory) -> Path:
    from vqspeech.cli import main

    run_dir = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", str(demo_recipe), "+debug=tiny", f"data.root={tiny_corpus}", f"run_dir={run_dir}",
                 "train.device=cpu", "train.audio_every=null", "-q"]) == 0
    return run_dir


# A prior small enough to train in a second on the tiny run's codes: `train-prior --run RUN *TINY_PRIOR`.
TINY_PRIOR = ("prior.channels=8", "prior.skip_channels=8", "prior.layers=3", "prior.speaker_dim=4",
              "train.crop_codes=16", "train.batch_size=2", "train.precision=fp32", "train.valid_every=2",
              "train.checkpoint_every=2", "train.device=cpu", "train.num_workers=0")


@pytest.fixture(scope="session")
def tiny_prior() -> list[str]:
    """The overrides of :data:`TINY_PRIOR`, for tests that train a prior further."""
    return list(TINY_PRIOR)


@pytest.fixture(scope="module")
def prior_run(trained_run) -> Path:
    """The module's trained_run with a tiny prior trained 3 steps in RUN/prior."""
    from vqspeech.cli import main

    assert main(["train-prior", "--run", str(trained_run), "train.max_steps=3", *TINY_PRIOR, "-q"]) == 0
    return trained_run


@pytest.fixture(scope="module")
def reference_run(demo_recipe, tiny_corpus, tmp_path_factory) -> Path:
    """A tiny run with speaker=reference: voices from reference audio."""
    from vqspeech.cli import main

    run_dir = tmp_path_factory.mktemp("reference") / "run"
    assert main(["train", str(demo_recipe), "+debug=tiny", f"data.root={tiny_corpus}", f"run_dir={run_dir}",
                 "train.device=cpu", "train.audio_every=null", "speaker=reference", "model.loudness_lufs=-20",
                 "-q"]) == 0
    return run_dir


@pytest.fixture(scope="session")
def flite_corpus(tmp_path_factory) -> Path:
    """3 sentences × 2 flite voices with text and flite's phone times (the demo corpus's own builder): speech
    pocketsphinx can align. Skips the test without flite."""
    import shutil

    from vqspeech.data.demo import prepare_demo

    if shutil.which("flite") is None:
        pytest.skip("flite is not installed")
    root = tmp_path_factory.mktemp("flite")
    prepare_demo(root, n_sentences=3, n_valid=1, n_test=1, voices=("slt", "kal16"), seed=1, workers=2,
                 progress=False)
    return root


@pytest.fixture(scope="session")
def vctk_mini(pytestconfig) -> Path:
    """The VCTK excerpt folder (holding wav16/); skips the test when it is not there."""
    given = pytestconfig.getoption("--vctk-mini") or os.environ.get("VQSPEECH_VCTK_MINI")
    path = Path(given) if given else DEFAULT_VCTK_MINI
    if not (path / "wav16").is_dir():
        pytest.skip(f"VCTK excerpt not found at {path} (set --vctk-mini or VQSPEECH_VCTK_MINI)")
    return path


@pytest.fixture
def tiny_model_kwargs():
    """``make(speakers)``: fresh constructor kwargs of a VQVAE with hop 8 and a 2 × 3-layer WaveNet."""

    def make(speakers=("a", "b")) -> dict:
        return {
            "model": {
                "encoder": {"channels": 8, "latent_dim": 4, "n_layers": 3, "kernel_size": 4, "stride": 2},
                "decoder": {"residual_channels": 8, "skip_channels": 16, "cond_channels": 8, "kernel_size": 2,
                            "layers_per_stack": 3, "stacks": 2},
                "speaker_dim": 4,
                "bottleneck": {"kind": "vq", "codebook_size": 16, "ema_decay": None, "ema_epsilon": 1e-5,
                               "init": None, "kmeans_iters": 10, "dead_code_steps": None},
            },
            "speakers": list(speakers),
        }

    return make


@pytest.fixture
def tiny_model(tiny_model_kwargs):
    """``make(speakers)``: that VQVAE untrained, seeded, in eval mode."""
    import torch

    from vqspeech.models import build_model

    def make(speakers=("a", "b")):
        torch.manual_seed(0)
        return build_model(tiny_model_kwargs(speakers)).eval()

    return make
