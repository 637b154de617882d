"""The auxiliary losses on z_e: the speaker adversary (gradient reversal) and CPC; what they train, and their place in the VQ-VAE."""

import pytest
import torch

from vqspeech.errors import UserError
from vqspeech.models import build_model
from vqspeech.models.adversary import SpeakerAdversary, reverse_gradient


def test_reverse_gradient_is_the_identity_forward_and_negates_the_gradient():
    x = torch.randn(3, 4, requires_grad=True)
    y = reverse_gradient(x)
    assert torch.equal(y, x)
    (y * torch.arange(4.0)).sum().backward()
    assert torch.equal(x.grad, -torch.arange(4.0).expand(3, 4))


def test_one_step_trains_the_classifier_to_find_the_speaker_and_its_input_to_hide_it():
    torch.manual_seed(0)
    adversary = SpeakerAdversary(latent_dim=4, n_speakers=2, channels=8)
    z = torch.randn(2, 4, 10, requires_grad=True)
    ids = torch.tensor([0, 1])
    before = adversary(z, ids)
    before.loss.backward()
    with torch.no_grad():
        for p in adversary.parameters():
            p -= 0.05 * p.grad  # gradient descent on the classifier lowers its loss
        assert adversary(z, ids).loss < before.loss
        # descent on the input (what the encoder does) raises the classifier's loss
        assert adversary(z - 0.05 * z.grad, ids).loss > adversary(z, ids).loss
    with torch.no_grad():  # the accuracy is the share of frames whose argmax is the speaker, computed apart
        logits = adversary.net(z)
    expected = (logits.argmax(1) == ids[:, None]).float().mean()
    assert before.accuracy.item() == pytest.approx(expected.item()) and not before.accuracy.requires_grad
    assert adversary(z, torch.tensor([1, 0])).accuracy.item() == pytest.approx(
        (logits.argmax(1) == torch.tensor([[1], [0]])).float().mean().item())


def test_the_vqvae_adds_the_term_in_training_only_and_refuses_negative_channels(tiny_model_kwargs):
    kwargs = tiny_model_kwargs(["a", "b", "c"])
    kwargs["model"]["speaker_adversary"] = 16
    model = build_model(kwargs)
    wav, ids = (0.3 * torch.randn(2, 1, 64)).clamp(-1, 1), torch.tensor([0, 2])
    out = model(wav, ids)
    assert set(out.losses) == {"reconstruction", "codebook", "commitment", "speaker_adv"}
    assert "speaker_adv_accuracy" in out.metrics and "perplexity" in out.metrics
    # the encoder's gradient from the adversary is the negation of the classifier's own direction
    out.losses["speaker_adv"].backward()
    assert all(p.grad is not None for p in model.adversary.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    assert all(p.grad is None for p in model.decoder.parameters())
    assert "speaker_adv" not in model.eval()(wav, ids).losses
    # off by default: no classifier, no term
    assert build_model(tiny_model_kwargs(["a", "b"])).adversary is None
    kwargs["model"]["speaker_adversary"] = -1
    with pytest.raises(ValueError, match="model.speaker_adversary must be 0"):
        build_model(kwargs)


def test_cpc_scores_a_predictable_future_and_refuses_crops_shorter_than_its_steps():
    from vqspeech.models.cpc import ContrastivePredictor

    torch.manual_seed(0)
    cpc = ContrastivePredictor(latent_dim=4, steps=2, channels=8, negatives=4)
    # a slowly varying z_e: training the predictor lowers the loss well below chance, log(1 + negatives)
    t = torch.arange(40.0)
    z = torch.stack([torch.sin(t / 3 + phase) for phase in range(4)])[None].repeat(2, 1, 1)
    first = cpc(z, torch.Generator().manual_seed(0))
    assert abs(first.loss.item() - torch.log(torch.tensor(5.0)).item()) < 1.0
    optimizer = torch.optim.Adam(cpc.parameters(), lr=1e-2)
    for step in range(150):
        optimizer.zero_grad()
        cpc(z, torch.Generator().manual_seed(step)).loss.backward()
        optimizer.step()
    trained = cpc(z, torch.Generator().manual_seed(999))
    assert trained.loss < 0.5 * first.loss and trained.accuracy > 0.7
    with pytest.raises(ValueError, match="holds only 2 frames"):
        cpc(z[..., :2])


def test_the_vqvae_adds_cpc_in_training_only(tiny_model_kwargs):
    kwargs = tiny_model_kwargs(["a", "b"])
    kwargs["model"]["cpc_steps"] = 3
    model = build_model(kwargs)
    wav, ids = (0.3 * torch.randn(2, 1, 64)).clamp(-1, 1), torch.tensor([0, 1])
    out = model(wav, ids)
    assert "cpc" in out.losses
    # the metric is the predictor's own accuracy on this batch's z_e, passed through unchanged
    from vqspeech.models.cpc import CPCResult

    seen = []
    real = model.cpc.forward
    model.cpc.forward = lambda z_e, generator=None: seen.append(z_e) or CPCResult(real(z_e).loss, torch.tensor(0.375))
    assert model(wav, ids).metrics["cpc_accuracy"].item() == 0.375
    model.cpc.forward = real
    assert torch.allclose(seen[0], model.encoder(wav))
    out.losses["cpc"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    assert "cpc" not in model.eval()(wav, ids).losses


def test_the_dann_ramp_raises_only_the_adversary_weight_from_zero_to_its_value(demo_recipe):
    from vqspeech.config import compose_recipe
    from vqspeech.training.keys import dann_ramp, loss_weights

    assert dann_ramp(0.0) == 0.0 and dann_ramp(-1.0) == 0.0
    assert dann_ramp(0.1) == pytest.approx(2 / (1 + 2.718281828459045 ** -1) - 1)  # 0.4621
    assert dann_ramp(1.0) == dann_ramp(5.0) == pytest.approx(1.0, abs=1e-4)
    tcfg = compose_recipe(demo_recipe, ["train.speaker_adv_ramp_steps=1000",
                                        "train.loss_weights.speaker_adv=0.1"]).train
    ramped = [loss_weights(tcfg, s)["speaker_adv"] for s in (0, 100, 400, 1000, 5000)]
    assert ramped[0] == 0.0 and ramped == sorted(ramped)  # starts off, never falls
    assert ramped[1] == pytest.approx(0.1 * dann_ramp(0.1)) and ramped[-1] == pytest.approx(0.1, abs=1e-5)
    assert loss_weights(tcfg, 0)["reconstruction"] == 1.0  # only the adversary is ramped
    flat = compose_recipe(demo_recipe, ["train.loss_weights.speaker_adv=0.1"]).train
    assert loss_weights(flat, 0)["speaker_adv"] == 0.1  # 0 ramp steps: constant


def test_a_pooled_adversary_names_the_speaker_of_a_crop_from_its_frames_mean_logits(tiny_model_kwargs):
    torch.manual_seed(0)
    adversary = SpeakerAdversary(latent_dim=4, n_speakers=3, channels=8, pooled=True)
    z = torch.randn(2, 4, 10, requires_grad=True)
    ids = torch.tensor([0, 2])
    out = adversary(z, ids)
    mean_logits = adversary.net(z).mean(-1)  # [B, S]: one decision per crop
    assert out.loss.item() == pytest.approx(torch.nn.functional.cross_entropy(mean_logits, ids).item(), rel=1e-6)
    expected = (mean_logits.argmax(1) == ids).float().mean().item()
    assert out.accuracy.item() == expected and expected in (0.0, 0.5, 1.0)
    out.loss.backward()
    with torch.no_grad():  # its input still learns to hide the speaker
        assert adversary(z - 0.05 * z.grad, ids).loss > adversary(z, ids).loss
    kwargs = tiny_model_kwargs(["a", "b"])
    kwargs["model"].update(speaker_adversary=8, speaker_adversary_pooled=True)
    assert build_model(kwargs).adversary.pooled
    del kwargs["model"]["speaker_adversary_pooled"]  # checkpoints from before the option: per frame
    assert not build_model(kwargs).adversary.pooled
