"""A .vqs file decodes by construction, not by luck: a trained prior's file, compressed here, decodes to the
same codes (and re-encodes to the same words) in fresh processes on torch's default, AVX2 and best CPU
kernels and with 1 and 2 threads; and a damaged frame count is refused in one line before any decoding."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from tests.conftest import TINY_PRIOR
from vqspeech.cli import main

CHILD = r"""
import hashlib, json, sys
import numpy as np, torch
from vqspeech.codec import decompress_codes, encode_codes, coding_prior, read_vqs
from vqspeech.runs import load_prior, load_run

run_dir, vqs = sys.argv[1], sys.argv[2]
run = load_run(run_dir, device="cpu")
prior = load_prior(run)
out = {"capability": torch.backends.cpu.get_cpu_capability()}
for threads in (1, 2):
    torch.set_num_threads(threads)
    header, codes = decompress_codes(run, prior, vqs)
    words = encode_codes(coding_prior(prior.model), codes, header.speaker)
    out[f"codes_{threads}"] = codes.tolist()
    out[f"words_{threads}"] = hashlib.sha256(np.asarray(words, "<u4").tobytes()).hexdigest()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def trained_prior_file(prior_run, tiny_corpus, tmp_path_factory):
    """The tiny run's prior trained on to 300 steps (sharp, not the untrained prior's flat logits), and a .vqs
    file of a test utterance compressed under it in this process."""
    assert main(["train-prior", "--run", str(prior_run), "train.max_steps=300", *TINY_PRIOR, "train.valid_every=100",
                 "train.checkpoint_every=100", "-q"]) == 0
    out = tmp_path_factory.mktemp("vqs") / "u5.vqs"
    assert main(["compress", "--run", str(prior_run), str(tiny_corpus / "spk_a" / "u5.wav"), "--speaker", "spk_a",
                 "-o", str(out), "-q"]) == 0
    return prior_run, out


def test_the_prior_is_trained_enough_to_matter(trained_prior_file):
    from vqspeech.codes import speaker_vectors
    from vqspeech.codec import _speaker_input, coding_prior, decompress_codes
    from vqspeech.runs import load_prior, load_run

    run_dir, vqs = trained_prior_file
    run = load_run(run_dir, device="cpu")
    prior = load_prior(run)
    header, codes = decompress_codes(run, prior, vqs)
    coder = coding_prior(prior.model)
    with torch.no_grad():
        logits = coder(coder.inputs(codes[None]), _speaker_input(header.speaker, speaker_vectors(run)))[0]
    assert float(logits.std()) > 1.0  # far from an untrained prior's 0.2


def test_decoding_is_the_same_on_every_cpu_kernel_and_thread_count(trained_prior_file):
    run_dir, vqs = trained_prior_file
    from vqspeech.codec import read_vqs
    from vqspeech.runs import load_prior, load_run

    run = load_run(run_dir, device="cpu")
    from vqspeech.codec import decompress_codes

    _, here = decompress_codes(run, load_prior(run), vqs)
    seen = {}
    for capability in ("default", "avx2", None):  # None: the machine's best
        env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
        if capability is not None:
            env["ATEN_CPU_CAPABILITY"] = capability
        done = subprocess.run([sys.executable, "-c", CHILD, str(run_dir), str(vqs)], capture_output=True, text=True,
                              env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout.strip().splitlines()[-1])
        if capability is not None and out["capability"] != capability.upper():
            pytest.skip(f"this CPU has no {capability} kernels ({out['capability']})")
        seen[out["capability"]] = out
        for threads in (1, 2):
            assert out[f"codes_{threads}"] == here.tolist(), (out["capability"], threads)
    print("decoded identically on", ", ".join(f"{k} (1 and 2 threads)" for k in seen))
    assert len({o[f"words_{t}"] for o in seen.values() for t in (1, 2)}) == 1  # and re-encoded to the same words
    assert len(seen) >= 2


def test_a_damaged_frame_count_is_refused_in_one_line_at_once(trained_prior_file, tmp_path, capsys):
    import struct

    from vqspeech.codec import HEADER

    run_dir, vqs = trained_prior_file
    data = bytearray(vqs.read_bytes())
    fields = list(HEADER.unpack_from(data))
    for frames in (2 ** 32 - 1, 40_000_000, 5_000_000):
        fields[6] = frames  # magic, version, decoder, model hash, prior hash, rate, frames, check, speaker
        damaged = tmp_path / f"frames-{frames}.vqs"
        damaged.write_bytes(HEADER.pack(*fields) + bytes(data[HEADER.size:]))
        started = time.monotonic()
        assert main(["decompress", "--run", str(run_dir), str(damaged), "-o", str(tmp_path / "out.wav"), "-q"]) == 2
        took = time.monotonic() - started
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and f"the header claims {frames} frames, more than" in errors[0], errors
        assert "the file is damaged" in errors[0]
        assert took < 10, took
        assert not (tmp_path / "out.wav").exists()
    assert struct.calcsize("<3sBBIIIIIHIBee") == HEADER.size
