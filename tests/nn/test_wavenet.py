"""Causal convolution, the WaveNet decoder (causality, conditioning) and the strided encoder
(hop, frame count, locality). Generation is tested in tests/models/test_generation.py."""

import pytest
import torch

from vqspeech.models.encoder import ConvEncoder
from vqspeech.models.wavenet import WaveNetDecoder
from vqspeech.nn import CausalConv1d

HOP = 4
LATENT, SPEAKER = 5, 3


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tiny_decoder(kernel_size: int = 2, layers_per_stack: int = 3, stacks: int = 2,
                 upsample: str = "repeat") -> WaveNetDecoder:
    return WaveNetDecoder(latent_dim=LATENT, speaker_dim=SPEAKER, hop_length=HOP, residual_channels=8,
                          skip_channels=12, cond_channels=10, kernel_size=kernel_size,
                          layers_per_stack=layers_per_stack, stacks=stacks, upsample=upsample).eval()


def inputs(batch: int = 2, n_frames: int = 6):
    samples = torch.randint(0, 256, (batch, n_frames * HOP))
    latents = torch.randn(batch, LATENT, n_frames)
    speaker = torch.randn(batch, SPEAKER)
    return samples, latents, speaker


def differs(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-4) -> bool:
    return bool((a - b).abs().max() > tol)


# ---- CausalConv1d -------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel_size", [1, 2, 3])
@pytest.mark.parametrize("dilation", [1, 2, 5])
def test_causal_conv_output_does_not_see_the_future(kernel_size, dilation):
    conv = CausalConv1d(3, 4, kernel_size, dilation)
    x = torch.randn(2, 3, 30)
    y = conv(x)
    assert y.shape[-1] == x.shape[-1]
    for t in (0, 7, 29):
        x2 = x.clone()
        x2[..., t + 1:] = torch.randn_like(x2[..., t + 1:])
        x2[..., t] += 1.0  # the present does count
        y2 = conv(x2)
        torch.testing.assert_close(y2[..., :t], y[..., :t], rtol=0, atol=1e-6)
        assert differs(y2[..., t], y[..., t])
    # and it sees exactly (k-1)*d samples of the past
    span = (kernel_size - 1) * dilation
    x3 = x.clone()
    x3[..., 10] += 1.0
    y3 = conv(x3)
    changed = ((y3 - y).abs().amax((0, 1)) > 1e-6).nonzero().flatten().tolist()
    assert changed == [10 + j * dilation for j in range(kernel_size)]
    assert max(changed) - 10 == span


# ---- WaveNet decoder ----------------------------------------------------------------------------


def test_receptive_field_formula_and_measured():
    for kernel_size, layers, stacks in [(2, 3, 2), (3, 2, 2), (2, 4, 1)]:
        dec = tiny_decoder(kernel_size, layers, stacks).double()  # the farthest taps contribute ~1e-7
        dilations = [2 ** i for _ in range(stacks) for i in range(layers)]
        rf = (kernel_size - 1) * sum(dilations) + 1
        assert dec.receptive_field == rf
        # logits at t see samples t - rf … t - 1 (the input at t is sample t - 1)
        samples, latents, speaker = inputs(batch=1, n_frames=(rf + 24) // HOP + 1)
        with torch.no_grad():
            latents, speaker = latents.double(), speaker.double()
            base = dec(samples, latents, speaker)
            s = 3
            changed_samples = samples.clone()
            changed_samples[:, s] = (changed_samples[:, s] + 100) % 256
            logits = dec(changed_samples, latents, speaker)
        changed = ((logits - base).abs().amax((0, 1)) > 1e-12).nonzero().flatten()
        assert changed.min().item() == s + 1
        assert changed.max().item() == s + rf


def test_decoder_is_causal():
    dec = tiny_decoder()
    samples, latents, speaker = inputs()
    with torch.no_grad():
        base = dec(samples, latents, speaker)
        for t in (0, 5, 13, samples.shape[1] - 2):
            changed = samples.clone()
            changed[:, t:] = torch.randint(0, 256, changed[:, t:].shape)
            changed[:, t] = (samples[:, t] + 128) % 256  # make sure sample t itself changes
            logits = dec(changed, latents, speaker)
            torch.testing.assert_close(logits[..., :t + 1], base[..., :t + 1], rtol=0, atol=1e-5)
            assert differs(logits[..., t + 1], base[..., t + 1])  # sample t is the input at t + 1


def test_speaker_changes_logits_everywhere():
    dec = tiny_decoder()
    samples, latents, speaker = inputs()
    with torch.no_grad():
        base = dec(samples, latents, speaker)
        other = dec(samples, latents, speaker + torch.randn_like(speaker))
    per_position = (other - base).abs().amax(1)  # [B, T]
    assert (per_position > 1e-4).all()


def test_latent_frame_only_affects_logits_from_its_neighbour_frame_on():
    dec = tiny_decoder()
    n_frames = 6
    samples, latents, speaker = inputs(n_frames=n_frames)
    last = n_frames - 1
    changed = latents.clone()
    changed[..., last] += 3 * torch.randn_like(changed[..., last])
    with torch.no_grad():
        base = dec(samples, latents, speaker)
        logits = dec(samples, changed, speaker)
    # upnet's kernel-3 conv spreads frame `last` to frame last - 1; nothing can reach earlier samples
    first_affected = (last - 1) * HOP
    torch.testing.assert_close(logits[..., :first_affected], base[..., :first_affected], rtol=0, atol=1e-5)
    assert differs(logits[..., first_affected], base[..., first_affected])
    assert differs(logits[..., last * HOP], base[..., last * HOP])


def test_linear_upsampling_reaches_back_half_a_frame_further():
    linear = tiny_decoder(upsample="linear")
    n_frames = 6
    samples, latents, speaker = inputs(n_frames=n_frames)
    with torch.no_grad():
        last = n_frames - 1
        changed = latents.clone()
        changed[..., last] += 3 * torch.randn_like(changed[..., last])
        base, logits = linear(samples, latents, speaker), linear(samples, changed, speaker)
    # upnet spreads frame `last` to frame last − 1, whose centre is reached from the middle of frame last − 2
    first_affected = (last - 2) * HOP + HOP // 2
    torch.testing.assert_close(logits[..., :first_affected], base[..., :first_affected], rtol=0, atol=1e-5)
    assert differs(logits[..., first_affected], base[..., first_affected])


def test_an_unknown_upsampling_is_refused():
    with pytest.raises(ValueError, match="model.decoder.upsample must be one of repeat, linear, got 'cubic'"):
        WaveNetDecoder(latent_dim=LATENT, speaker_dim=SPEAKER, hop_length=HOP, upsample="cubic")


# ---- encoder ------------------------------------------------------------------------------------


def test_encoder_hop_and_frame_count():
    assert ConvEncoder().hop_length == 64
    enc = ConvEncoder(channels=8, latent_dim=4)
    assert enc.hop_length == 64
    assert ConvEncoder(channels=8, n_layers=3, stride=2).hop_length == 8
    with torch.no_grad():
        for n in (1, 2, 5, 16):
            z = enc(torch.randn(2, 1, n * 64))
            assert z.shape[-1] == n
            assert z.shape[1] == 4
    for length in (63, 100, 65, 64 * 3 + 32):
        with pytest.raises(ValueError, match="hop_length"):
            enc(torch.randn(1, 1, length))


def test_encoder_frames_do_not_see_far_samples():
    enc = ConvEncoder(channels=8, latent_dim=4)
    hop = enc.hop_length
    wav = torch.randn(1, 1, 16 * hop)
    with torch.no_grad():
        base = enc(wav)
        late = wav.clone()
        late[..., 4 * hop:] = torch.randn_like(late[..., 4 * hop:])
        changed = enc(late)
    # the stack of kernel-4 stride-2 layers reaches at most 2·hop − 2 samples to the right of a frame's start
    torch.testing.assert_close(changed[..., :3], base[..., :3], rtol=0, atol=1e-6)
    assert differs(changed[..., 5:], base[..., 5:], tol=1e-6)

    early = wav.clone()
    early[..., :hop] = torch.randn_like(early[..., :hop])
    with torch.no_grad():
        changed = enc(early)
    assert differs(changed[..., 0], base[..., 0], tol=1e-6)
    torch.testing.assert_close(changed[..., 2:], base[..., 2:], rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", ["block", "stack"])
def test_activation_checkpointing_changes_neither_logits_nor_gradients(mode):
    decoder = tiny_decoder()
    samples, latents, speaker = inputs()
    latents.requires_grad_(True)

    def run(checkpointing):
        decoder.zero_grad()
        latents.grad = None
        decoder.activation_checkpointing = checkpointing
        logits = decoder(samples, latents, speaker)
        (logits.square().mean()).backward()
        return logits.detach(), latents.grad.clone(), [p.grad.clone() for p in decoder.parameters()]

    plain, checkpointed = run(None), run(mode)
    torch.testing.assert_close(checkpointed[0], plain[0], rtol=1e-6, atol=1e-6)  # skips summed per group
    torch.testing.assert_close(checkpointed[1], plain[1], rtol=1e-6, atol=1e-7)
    for a, b in zip(checkpointed[2], plain[2]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_unknown_checkpointing_mode_is_refused():
    decoder = tiny_decoder()
    decoder.activation_checkpointing = "layer"
    with pytest.raises(ValueError, match="block"):
        decoder(*inputs())
