"""The vector-quantisation layer (van den Oord et al. 2017, eq. 1–3), shared by every vqspeech model.

z_e [B, D, F] -> nearest codebook vector per frame -> quantized [B, D, F] with a straight-through gradient.

Codebook learning, chosen at construction:
  * gradient (default): the codebook term ‖sg[z_e] − e‖² moves the codes;
  * EMA (``ema_decay`` set): codes are exponential moving averages of their assigned encoder outputs,
    with Laplace-smoothed cluster sizes; the codebook loss term is then not returned.
Optional: initialisation from the first training batch (``init="random"`` picks encoder outputs,
``init="kmeans"`` clusters them) and dead-code restart (``dead_code_steps``: a code unused for that many
training steps is re-seeded from a current encoder output).

Distances and codebook updates run in float32 with autocast turned off, whatever the caller's context.
Under torch.distributed (DDP training), in training mode: the ranks first agree whether every rank's batch
is finite (else none updates), code counts and EMA sums are all-reduced (so every rank applies the update
of the global batch, and the usage metrics describe it), and data initialisation and restart vectors are
drawn on rank 0 and broadcast, so every rank holds the same codebook and EMA state without DDP's buffer
broadcast. Eval mode uses no collective.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from vqspeech.quantization.kmeans import kmeans, nearest_codes, sample_vectors
from vqspeech.quantization.result import Bottleneck, BottleneckResult
from vqspeech.quantization.usage import code_usage

INIT_METHODS = ("random", "kmeans")


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if _distributed():
        dist.all_reduce(t)
    return t


def _broadcast(t: torch.Tensor) -> torch.Tensor:
    if _distributed():
        dist.broadcast(t, src=0)
    return t


def _on_every_rank(flag: bool, device: torch.device) -> bool:
    """flag and-ed over ranks (flag itself outside torch.distributed)."""
    if not _distributed():
        return flag
    t = torch.tensor(int(flag), device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t)


class VectorQuantizer(Bottleneck):
    """Nearest-neighbour vector quantiser with straight-through gradient (the default bottleneck, kind "vq").

    Args:
        dim: D, the size of each codebook vector (= encoder output channels).
        codebook_size: K.
        ema_decay: None learns the codebook by gradient; a float (paper: 0.99) uses EMA updates.
        ema_epsilon: Laplace smoothing of EMA cluster sizes.
        init: None keeps the random initialisation; "random" or "kmeans" initialises from the first
            training batch.
        kmeans_iters: Lloyd iterations for ``init="kmeans"``.
        dead_code_steps: None disables restarts; N re-seeds codes unused for N training steps.
    """

    kind = "vq"
    discrete = True

    def __init__(self, dim: int, codebook_size: int, ema_decay: float | None = None,
                 ema_epsilon: float = 1e-5, init: str | None = None, kmeans_iters: int = 10,
                 dead_code_steps: int | None = None):
        super().__init__(codebook_size)
        if init is not None and init not in INIT_METHODS:
            raise ValueError(f"init must be None or one of {INIT_METHODS}, got {init!r}")
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in (0, 1), got {ema_decay}")
        self.dim = dim
        self.ema_decay = ema_decay
        self.ema_epsilon = ema_epsilon
        self.init = init
        self.kmeans_iters = kmeans_iters
        self.dead_code_steps = dead_code_steps

        bound = 1.0 / codebook_size
        self.codebook = nn.Parameter(torch.empty(codebook_size, dim).uniform_(-bound, bound),
                                     requires_grad=ema_decay is None)
        self.register_buffer("initialized", torch.tensor(init is None))
        self.register_buffer("unused_steps", torch.zeros(codebook_size, dtype=torch.long))
        # codes re-seeded since the optimizer last took them (see reset_optimizer_state); not saved
        self.register_buffer("restarted", torch.zeros(codebook_size, dtype=torch.bool), persistent=False)
        self._n_restarted = 0  # rows flagged in ``restarted``, kept on the host: checking costs no device sync
        if ema_decay is not None:
            self.register_buffer("cluster_size", torch.ones(codebook_size))
            self.register_buffer("embed_sum", self.codebook.detach().clone())

    @property
    def uses_ema(self) -> bool:
        return self.ema_decay is not None

    def forward(self, z: torch.Tensor) -> BottleneckResult:
        """Quantise encoder outputs.

        Args:
            z: Tensor[B, D, F], encoder outputs z_e.
        Returns:
            BottleneckResult with quantized [B, D, F] and codes [B, F].
        """
        batch, dim, frames = z.shape
        with torch.autocast(device_type=z.device.type, enabled=False):
            flat = z.float().permute(0, 2, 1).reshape(-1, dim)  # [N, D]
            update = self.training and _on_every_rank(bool(torch.isfinite(flat).all()), flat.device)
            if update and not bool(self.initialized):
                self._init_from_data(flat.detach())
            # a non-finite frame still gets a valid code (its loss is non-finite, and the step is skipped)
            search = flat.detach() if update else torch.nan_to_num(flat.detach(), nan=0.0, posinf=0.0, neginf=0.0)
            codes = nearest_codes(search, self.codebook.detach().float())  # blocked: bounded memory
            counts = torch.bincount(codes, minlength=self.codebook_size)
            q = F.embedding(codes, self.codebook).float()  # [N, D]

            losses = {"commitment": F.mse_loss(flat, q.detach())}
            if not self.uses_ema:
                losses["codebook"] = F.mse_loss(q, flat.detach())
            if update:
                counts = self._update_codebook(flat.detach(), codes, counts)  # summed over ranks

            quantized = q.detach() + (flat - flat.detach())  # value q exactly; d quantized / d z = I
            quantized = quantized.view(batch, frames, dim).permute(0, 2, 1).to(z.dtype)
        return BottleneckResult(quantized=quantized, codes=codes.view(batch, frames),
                               losses=losses, metrics=self._usage_metrics(counts))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codebook vectors for given codes. codes: LongTensor[B, F] -> Tensor[B, D, F]."""
        return F.embedding(codes, self.codebook).permute(0, 2, 1)

    @torch.no_grad()
    def _usage_metrics(self, counts: torch.Tensor) -> dict[str, torch.Tensor]:
        usage = code_usage(counts)
        return {"perplexity": usage.perplexity.float(), "used_codes": usage.used_codes.float()}

    @torch.no_grad()
    def _init_from_data(self, flat: torch.Tensor) -> None:
        """Initialise the codebook from encoder outputs flat [N, D] (rank 0's choice on every rank)."""
        if self.init == "kmeans":
            centroids = kmeans(flat, self.codebook_size, self.kmeans_iters)
        else:
            centroids = sample_vectors(flat, self.codebook_size)
        self.codebook.data.copy_(_broadcast(centroids))
        if self.uses_ema:
            self.embed_sum.copy_(self.codebook.data)
            self.cluster_size.fill_(1.0)
        self.initialized.fill_(True)

    @torch.no_grad()
    def _update_codebook(self, flat: torch.Tensor, codes: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """EMA update and dead-code restart for one training step. flat: [N, D], codes: [N], counts: [K].
        Returns the counts summed over ranks, LongTensor[K]."""
        counts = _all_reduce_sum(counts.clone())
        if self.uses_ema:
            sums = _all_reduce_sum(torch.zeros_like(self.embed_sum).index_add_(0, codes, flat))
            decay = self.ema_decay
            self.cluster_size.mul_(decay).add_(counts.float(), alpha=1 - decay)
            self.embed_sum.mul_(decay).add_(sums, alpha=1 - decay)
            total = self.cluster_size.sum()
            smoothed = ((self.cluster_size + self.ema_epsilon)
                        / (total + self.codebook_size * self.ema_epsilon) * total)
            self.codebook.data.copy_(self.embed_sum / smoothed[:, None])
        if self.dead_code_steps is not None:
            self.unused_steps.add_(1)
            self.unused_steps[counts > 0] = 0
            self._restart(self.unused_steps >= self.dead_code_steps, flat)
        return counts

    @torch.no_grad()
    def _restart(self, dead: torch.Tensor, flat: torch.Tensor) -> None:
        """Re-seed the codes flagged in dead [K] from encoder outputs flat [N, D]."""
        n_dead = int(dead.sum())
        if n_dead == 0:
            return
        fresh = _broadcast(sample_vectors(flat, n_dead))
        self.codebook.data[dead] = fresh
        self.restarted |= dead
        self._n_restarted += n_dead
        if self.uses_ema:
            self.embed_sum[dead] = fresh
            self.cluster_size[dead] = 1.0
        self.unused_steps[dead] = 0

    @torch.no_grad()
    def reset_optimizer_state(self, optimizer: torch.optim.Optimizer) -> int:
        """Zero the optimizer's per-element state (Adam's moments) of the codebook rows re-seeded since the last
        call, so a restarted code starts clean instead of moving with the dead code's history. Gradient
        codebook only (under EMA the codebook is no parameter). Returns how many rows were reset."""
        n = self._n_restarted
        if n == 0:
            return 0
        if self.codebook.requires_grad:
            for value in optimizer.state.get(self.codebook, {}).values():
                if torch.is_tensor(value) and value.shape == self.codebook.shape:
                    value[self.restarted] = 0
        self.restarted.zero_()
        self._n_restarted = 0
        return int(n)

    def bits_per_frame(self) -> float:
        """log2 K: the bitrate of the codes is frame rate × this."""
        return math.log2(self.codebook_size)

    def extra_repr(self) -> str:
        mode = f"ema_decay={self.ema_decay}" if self.uses_ema else "gradient"
        return (f"dim={self.dim}, codebook_size={self.codebook_size}, {mode}, init={self.init}, "
                f"dead_code_steps={self.dead_code_steps}")
