"""The continuous bottlenecks the VQ layer is compared with (recipes/bottlenecks): a VAE's Gaussian posterior
and a plain autoencoder's identity. Both return a :class:`BottleneckResult`, so the model, training, generation
and the evaluations handle every bottleneck alike."""

from __future__ import annotations

import torch
from torch import nn

from vqspeech.quantization.result import Bottleneck, BottleneckResult


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) ‖ N(0, 1)) elementwise, in nats: ½ (mean² + exp(logvar) − 1 − logvar)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)


class GaussianBottleneck(Bottleneck):
    """The VAE bottleneck: z_e [B, D, F] -> a 1×1 convolution -> mean and log-variance [B, D, F] each ->
    reparameterised sample mean + exp(logvar / 2) · ε in training, the mean outside training.

    The "kl" loss is KL(q(z | x) ‖ N(0, I)) in nats per audio sample: summed over the D dimensions of a frame,
    averaged over frames, divided by ``hop_length``. With the reconstruction term (nats per sample) at weight 1
    and ``train.loss_weights.kl`` = 1 the total is the negative ELBO per sample.

    Args:
        dim: D.
        hop_length: audio samples per latent frame.
        free_bits: λ, nats per dimension per frame (Kingma et al. 2016): each dimension's KL, averaged over the
            batch's frames, counts as at least λ, so the optimiser gains nothing by pushing it below λ.
            0 is off. The "kl_nats_per_frame" metric is the KL before the floor. Under DDP both use each
            process's own batch.
    """

    kind = "vae"

    def __init__(self, dim: int, hop_length: int, free_bits: float = 0.0):
        super().__init__()
        if free_bits < 0:
            raise ValueError(f"model.bottleneck.free_bits must be 0 or more, got {free_bits}")
        self.dim, self.hop_length, self.free_bits = dim, hop_length, free_bits
        self.to_stats = nn.Conv1d(dim, 2 * dim, 1)
        nn.init.zeros_(self.to_stats.bias)

    def posterior(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z_e Tensor[B, D, F] -> (mean, logvar), each Tensor[B, D, F]; logvar clamped to [−30, 20]."""
        mean, logvar = self.to_stats(z).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def forward(self, z: torch.Tensor) -> BottleneckResult:
        with torch.autocast(device_type=z.device.type, enabled=False):
            mean, logvar = self.posterior(z.float())
            sample = mean + (0.5 * logvar).exp() * torch.randn_like(mean) if self.training else mean
            kl_dim = gaussian_kl(mean, logvar).mean(dim=(0, 2))  # [D], nats per frame, averaged over frames
            kl = kl_dim.clamp(min=self.free_bits).sum() if self.free_bits else kl_dim.sum()
        return BottleneckResult(quantized=sample.to(z.dtype), codes=mean,
                                losses={"kl": kl / self.hop_length},
                                metrics={"kl_nats_per_frame": kl_dim.sum().detach()})

    def extra_repr(self) -> str:
        return f"vae: dim={self.dim}, free_bits={self.free_bits} nats/dim/frame"


class IdentityBottleneck(Bottleneck):
    """The plain autoencoder: the continuous z_e [B, D, F] goes to the decoder as it is (no loss, no metric)."""

    kind = "ae"

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, z: torch.Tensor) -> BottleneckResult:
        return BottleneckResult(quantized=z, codes=z)

    def extra_repr(self) -> str:
        return f"ae: dim={self.dim}, continuous"
