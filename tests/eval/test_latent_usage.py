"""The latent-usage measure: zero for a decoder that cannot see its latents, positive for one that uses them."""

import copy

import numpy as np
import pytest
import torch

from vqspeech.eval.latent_usage import ABLATIONS, OTHER_SPEAKER, TRUE, ZERO, latent_usage
from vqspeech.models import build_model

SR = 16000
KWARGS = {
    "model": {"encoder": {"channels": 8, "latent_dim": 4, "n_layers": 3, "kernel_size": 4, "stride": 2},
              "decoder": {"residual_channels": 8, "skip_channels": 16, "cond_channels": 8, "kernel_size": 2,
                          "layers_per_stack": 3, "stacks": 1}, "speaker_dim": 4,
              "bottleneck": {"kind": "vq", "codebook_size": 16, "ema_decay": None, "ema_epsilon": 1e-5, "init": None,
                             "kmeans_iters": 10, "dead_code_steps": None}},
    "speakers": ["a", "b"],
}


def waves(n=3, seconds=0.1):
    rng = np.random.default_rng(0)
    return [(0.3 * rng.standard_normal(int(seconds * SR) + 5 * i)).astype(np.float32) for i in range(n)]


@pytest.mark.parametrize("kind", ["vq", "vae", "ae"])
def test_a_decoder_with_zeroed_conditioning_weights_takes_nothing_from_latents_or_speaker(kind):
    torch.manual_seed(0)
    model = build_model({**copy.deepcopy(KWARGS), "model": {**KWARGS["model"], "bottleneck": {**KWARGS["model"]["bottleneck"], "kind": kind}}})
    with torch.no_grad():
        model.decoder.local_projection.weight.zero_()
        model.decoder.global_projection.weight.zero_()
    usage = latent_usage(model, waves(), [0, 1, 0], SR)
    assert set(usage.loss) == {TRUE, *ABLATIONS}
    for condition in ABLATIONS:
        assert abs(usage.gap(condition)) < 1e-6, condition
    assert usage.bottleneck == kind
    assert usage.nominal_bitrate == (4 * SR / 8 if kind == "vq" else None)  # log2 16 × 2000 frames/s
    assert (usage.kl_bitrate is not None) == (kind == "vae")


def test_a_decoder_that_sees_its_conditioning_shows_gaps():
    torch.manual_seed(0)  # the AE's latents are the encoder's output (a fresh codebook's vectors are near zero)
    model = build_model({**copy.deepcopy(KWARGS), "model": {**KWARGS["model"], "bottleneck": {"kind": "ae"}}})
    with torch.no_grad():  # loud conditioning: the decoder's output depends strongly on latents and speaker
        model.decoder.local_projection.weight.mul_(50)
        model.decoder.global_projection.weight.mul_(50)
    usage = latent_usage(model, waves(), [0, 1, 0], SR)
    assert abs(usage.gap(ZERO)) > 1e-4 and abs(usage.gap(OTHER_SPEAKER)) > 1e-4  # float noise is ~1e-7
    table = usage.markdown()
    assert "| latents zero |" in table and f"{usage.gap_bitrate(ZERO):.0f}" in table


def test_one_speaker_models_leave_the_speaker_ablation_out():
    model = build_model({**copy.deepcopy(KWARGS), "speakers": ["a"]})
    assert OTHER_SPEAKER not in latent_usage(model, waves(2), [0, 0], SR).loss
