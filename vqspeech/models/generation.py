"""Autoregressive generation with the WaveNet decoder: cached, fused, batched and folded.

Every ``decoder`` here is a :class:`~vqspeech.models.wavenet.WaveNetDecoder` (its :meth:`generate` calls
:func:`generate`; the code prior's WaveNet steps through :class:`IncrementalWaveNet` too).

* **Cached**: every block keeps a ring buffer of its past inputs, so a new sample costs one step per
  block, not a re-run over the receptive field.
* **Fused**: the decoder's weights are re-laid once per call (:class:`IncrementalWaveNet`) so one block's
  step is one matmul for the dilated convolution (all taps at once, with the conditioning as its bias),
  the gate, one matmul for the residual and one accumulating matmul for the skip. The conditioning of
  every block is computed at frame rate, per batch of pieces (:class:`Conditioning`): a long input never
  holds all of it at once.
* **Batched**: utterances of different lengths generate together; each one's conditioning is computed
  on its own latents, and padding sits after its end, which a causal network never looks back at.
* **Folded** (after WaveRNN's fold-with-overlap): a long utterance is cut into segments generated as one
  batch. Segment i starts ``2·overlap`` frames before its share: the first ``overlap`` frames warm the
  network up and are dropped, the next ``overlap`` are cross-faded linearly with the previous segment's
  last frames. With one segment, folded generation is unfolded generation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from tqdm import tqdm

from vqspeech.data.audio import MU_LAW_SILENCE as SILENCE, mu_law_decode
from vqspeech.nn.frames import frame_mix

SEGMENT_SECONDS = 0.5  # the fold length the evaluations and TensorBoard generate with


@dataclass
class GenerationConfig:
    """How to generate.

    Attributes:
        greedy: take the most likely sample instead of sampling.
        temperature: softmax temperature when sampling (below 1 sharpens every distribution).
        top_p: nucleus sampling: draw from the smallest set of μ-law levels whose probability reaches
            top_p (1.0: from all 256). Cuts the tail that makes isolated clicks without the silence of argmax.
        loud_temperature: conditional sampling after FFTNet (Jin et al. 2018), which sharpens the distribution
            in voiced speech: where the audio generated over the last frame (hop samples, a running mean
            square) is louder than ``loud_db`` dBFS, sample at this temperature instead (None: off).
        loud_db: the loudness threshold of ``loud_temperature``.
        segment_frames: fold utterances longer than this many latent frames into segments generated as
            one batch; None generates every utterance in one piece.
        overlap_frames: cross-fade length between segments, in frames (as much again is warm-up).
        max_batch: segments generated together at most; more are generated batch after batch, which
            bounds memory for long inputs.
    """

    greedy: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    loud_temperature: float | None = None
    loud_db: float = -30.0
    segment_frames: int | None = None
    overlap_frames: int = 8
    max_batch: int = 256

    @classmethod
    def from_seconds(cls, segment_seconds: float | None, sample_rate: int, hop_length: int,
                     **options) -> GenerationConfig:
        """A config folding into segments of ``segment_seconds`` (at least one frame; None: one piece);
        ``options`` are the other fields."""
        frames = None if segment_seconds is None else max(1, round(segment_seconds * sample_rate / hop_length))
        return cls(segment_frames=frames, **options)

    def __post_init__(self):
        if not self.greedy and self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must lie in (0, 1], got {self.top_p}")
        if self.loud_temperature is not None and not self.loud_temperature > 0:
            raise ValueError(f"loud temperature must be positive, got {self.loud_temperature}")
        if not self.loud_db < 0:
            raise ValueError(f"the loudness threshold is in dBFS and must be below 0, got {self.loud_db}")
        if self.segment_frames is not None and self.segment_frames < 1:
            raise ValueError(f"segment_frames must be at least 1, got {self.segment_frames}")
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {self.max_batch}")
        if self.overlap_frames < 0:
            raise ValueError(f"overlap_frames must be non-negative, got {self.overlap_frames}")


    @property
    def sampling(self) -> dict[str, float | None]:
        """The sampling settings (the keys of a recipe's ``generation`` block)."""
        return {key: getattr(self, key) for key in SAMPLING_KEYS}

    def describe(self) -> str:
        """The sampling settings in words, as reports and the harness state them."""
        if self.greedy:
            return "argmax"
        text = f"temperature {self.temperature:g}, top-p {self.top_p:g}"
        if self.loud_temperature is not None:
            text += f", temperature {self.loud_temperature:g} above {self.loud_db:g} dBFS"
        return text


SAMPLING_KEYS = ("temperature", "top_p", "loud_temperature", "loud_db")  # a recipe's generation block


def recipe_sampling(run_config: Mapping) -> dict[str, float | None]:
    """A run's sampling settings: its recipe's ``generation`` block (temperature, top_p, loud_temperature,
    loud_db), else GenerationConfig's defaults (plain sampling). What convert, reconstruct and report
    generate with unless told otherwise."""
    given = run_config.get("generation") or {}
    defaults = GenerationConfig().sampling
    return {key: given.get(key, defaults[key]) for key in SAMPLING_KEYS}


class IncrementalWaveNet:
    """A decoder's weights laid out for one-sample steps, and the state of a batch being generated.

    Use: ``net = IncrementalWaveNet(decoder); net.start(cond); logits = net.step(previous)`` per sample.
    The code prior's WaveNet (models/prior.py) has the same layout and steps through it too: its one
    conditioning frame is global (``hop_length`` None).
    """

    def __init__(self, decoder: nn.Module):
        self.hop = decoder.hop_length
        self.linear = decoder.upsample == "linear"
        self.mix = frame_mix(self.hop) if self.linear else None  # per sample of a frame: (frame before, weight)
        self.channels = decoder.channels
        scale = math.sqrt(0.5)
        self.embedding = decoder.input_embedding.weight.detach()  # [256, C]
        self.conv_weights, self.conv_bias, self.delays = [], [], []
        self.res_weights, self.res_bias, self.skip_weights = [], [], []
        skip_bias = 0
        for block in decoder.blocks:
            w = block.conv.weight.detach()  # [2C, C, k]; tap j sees the input (k-1-j)·d samples ago
            kernel, dilation = w.shape[-1], block.conv.dilation[0]
            self.conv_weights.append(torch.cat([w[:, :, j].t() for j in range(kernel)], 0))  # [k·C, 2C]
            self.conv_bias.append(block.conv.bias.detach())
            self.delays.append([(kernel - 1 - j) * dilation for j in range(kernel - 1)])
            out_w, out_b = block.out.weight.detach()[:, :, 0], block.out.bias.detach()  # [C+S, C], [C+S]
            c = block.channels
            self.res_weights.append(out_w[:c].t() * scale)
            self.res_bias.append(out_b[:c] * scale)
            self.skip_weights.append(out_w[c:].t())
            skip_bias = skip_bias + out_b[c:]
        self.skip_bias = skip_bias
        head = decoder.head
        self.head1 = (head[1].weight.detach()[:, :, 0].t(), head[1].bias.detach())
        self.head2 = (head[3].weight.detach()[:, :, 0].t(), head[3].bias.detach())
        self.scale = scale

    def start(self, cond: Tensor, context: bool = False) -> None:
        """cond: Tensor[B, L, 2C, F] from :meth:`WaveNetDecoder.conditioning`, the frames to generate.

        Under linear upsampling the first and last frames' samples also mix in their outer neighbours:
        ``context=True`` says cond carries them (Tensor[B, L, 2C, 1 + F + 1], as :func:`with_context` cuts
        from a longer utterance); otherwise cond is a whole utterance and its edge frames are repeated.
        """
        batch = cond.shape[0]
        if self.linear and not context:
            cond = torch.cat([cond[..., :1], cond, cond[..., -1:]], -1)
        bias = torch.stack(self.conv_bias)[None, :, :, None]  # [1, L, 2C, 1]
        self.cond = (cond + bias).permute(3, 1, 0, 2).contiguous()  # [F (+ 2), L, B, 2C]
        self.buffers = [cond.new_zeros(max(delays, default=0) or 1, batch, self.channels)
                        for delays in self.delays]
        self.t = 0

    def step(self, previous: Tensor) -> Tensor:
        """previous: LongTensor[B], the μ-law sample (or code) before this one -> logits Tensor[B, 256 (K)]."""
        t = self.t
        if self.linear:
            frame, within = divmod(t, self.hop)
            before, weight = self.mix[within]
            before += frame + 1  # +1: the context column
            cond = self.cond[before] * (1 - weight) + self.cond[before + 1] * weight  # [L, B, 2C]
        else:
            cond = self.cond[t // self.hop if self.hop else 0]  # [L, B, 2C]
        x = self.embedding[previous]  # [B, C]
        skips = self.skip_bias.expand(x.shape[0], -1).clone()
        c = self.channels
        for i, buffer in enumerate(self.buffers):
            size = buffer.shape[0]
            taps = [buffer[(t - delay) % size] for delay in self.delays[i]]
            h = torch.addmm(cond[i], torch.cat([*taps, x], 1), self.conv_weights[i])  # [B, 2C]
            if self.delays[i]:
                buffer[t % size] = x
            z = torch.tanh(h[:, :c]) * torch.sigmoid(h[:, c:])
            skips.addmm_(z, self.skip_weights[i])
            x = torch.addmm(self.res_bias[i], z, self.res_weights[i]).add_(x, alpha=self.scale)
        self.t = t + 1
        hidden = torch.relu(torch.addmm(self.head1[1], torch.relu(skips), self.head1[0]))
        return torch.addmm(self.head2[1], hidden, self.head2[0])


class Conditioning:
    """One utterance's conditioning of every block, computed when a frame range is asked for.

    ``cond[..., a:b]`` equals ``decoder.conditioning(latents[None], speaker[None])[0][..., a:b]``
    (Tensor[L, 2C, b − a]) without computing the rest: memory grows with the batch, not the input.
    latents: Tensor[D, F]; speaker: Tensor[E].
    """

    def __init__(self, decoder: nn.Module, latents: Tensor, speaker: Tensor):
        self.decoder, self.latents, self.speaker = decoder, latents, speaker
        self.shape = (len(decoder.blocks), 2 * decoder.channels, latents.shape[-1])
        self.dtype, self.device = latents.dtype, latents.device

    def __getitem__(self, key: tuple) -> Tensor:
        if len(key) != 2 or key[0] is not Ellipsis or not isinstance(key[1], slice) or key[1].step is not None:
            raise IndexError("index a Conditioning as cond[..., start:end]")
        start, end, _ = key[1].indices(self.shape[-1])
        return self.decoder.conditioning(self.latents[None], self.speaker[None], start, max(start, end))[0]


def with_context(cond: Tensor | Conditioning, start: int, end: int) -> Tensor:
    """Frames [start − 1, end + 1) of an utterance's conditioning (Tensor[..., F] or a :class:`Conditioning`),
    its edge frame repeated where the range passes the utterance's ends: Tensor[..., 1 + (end − start) + 1]."""
    frames = cond.shape[-1]
    inner = cond[..., max(0, start - 1): min(frames, end + 1)]
    first = inner[..., :1] if start == 0 else inner[..., :0]
    last = inner[..., -1:] if end == frames else inner[..., :0]
    return torch.cat([first, inner, last], -1)


def _segments(frames: int, config: GenerationConfig) -> list[tuple[int, int, int]]:
    """(start, keep_from, end) frame indices of each segment of an utterance: generate [start, end),
    drop [start, keep_from) as warm-up, cross-fade [keep_from, keep_from + overlap) with the previous."""
    seg = config.segment_frames
    if seg is None or frames <= seg:
        return [(0, 0, frames)]
    ov = config.overlap_frames
    out = []
    for i in range(math.ceil(frames / seg)):
        share = i * seg
        keep_from = max(0, share - ov)
        out.append((max(0, share - 2 * ov), keep_from, min(frames, share + seg)))
    return out


@torch.inference_mode()
def _generate_rows(decoder: nn.Module, conds: list[Tensor | Conditioning], pieces: list[tuple[int, int, int, int]],
                   config: GenerationConfig, generator: torch.Generator | None, progress: bool) -> list[Tensor]:
    """Generate the given pieces as one batch; returns each piece's waveform [(end − start) · hop]."""
    hop, margin = decoder.hop_length, int(decoder.upsample == "linear")
    longest = max(end - start for _, start, _, end in pieces)
    batch = torch.zeros(len(pieces), *conds[0].shape[:2], longest + 2 * margin, dtype=conds[0].dtype,
                        device=conds[0].device)
    for row, (u, start, _, end) in enumerate(pieces):
        piece = with_context(conds[u], start, end) if margin else conds[u][..., start:end]
        batch[row, ..., : piece.shape[-1]] = piece
    net = IncrementalWaveNet(decoder)
    net.start(batch, context=bool(margin))
    samples = torch.empty(len(pieces), longest * hop, dtype=torch.long, device=batch.device)
    sample = torch.full((len(pieces),), SILENCE, dtype=torch.long, device=batch.device)
    loudness = _Loudness(len(pieces), hop, config, batch.device) if config.loud_temperature is not None else None
    for t in tqdm(range(longest * hop), desc="generate", unit="sample", disable=not progress, leave=False):
        logits = net.step(sample)
        if config.greedy:
            sample = logits.argmax(-1)
        else:
            sample = draw(logits, config, generator, None if loudness is None else loudness.temperature())
            if loudness is not None:
                loudness.update(sample)
        samples[:, t] = sample
    waves = mu_law_decode(samples)
    return [waves[row, : (end - start) * hop] for row, (_, start, _, end) in enumerate(pieces)]


class _Loudness:
    """The running mean square of each row's generated audio over about one frame (an exponential average
    with time constant hop samples), and the temperature conditional sampling takes from it."""

    def __init__(self, rows: int, hop: int, config: GenerationConfig, device: torch.device):
        self.mean_square = torch.zeros(rows, device=device)
        self.rate = 1.0 / hop
        self.quiet, self.loud = config.temperature, config.loud_temperature
        self.threshold = 10 ** (config.loud_db / 10)  # mean square at loud_db dBFS

    def update(self, sample: Tensor) -> None:
        """sample: LongTensor[B], the μ-law samples just drawn."""
        self.mean_square.lerp_(mu_law_decode(sample) ** 2, self.rate)

    def temperature(self) -> Tensor:
        """Tensor[B, 1]: the loud temperature for the rows above the threshold, else the configured one."""
        return torch.where(self.mean_square > self.threshold, self.loud, self.quiet)[:, None]


def draw(logits: Tensor, config: GenerationConfig, generator: torch.Generator | None = None,
         temperature: float | Tensor | None = None) -> Tensor:
    """One sample per row from logits Tensor[B, 256] at ``temperature`` (a number, or Tensor[B, 1] per row;
    default config.temperature), within the config.top_p nucleus. Returns LongTensor[B]. A ``generator`` on the
    CPU draws on the CPU whatever the logits' device, so one seed gives the same samples on every device."""
    temperature = config.temperature if temperature is None else temperature
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if config.top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs >= config.top_p  # mass before a level already ≥ p
        sorted_probs = sorted_probs.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
    if generator is not None and generator.device != probs.device:  # a CPU generator: the same draws on any device
        return torch.multinomial(probs.cpu(), 1, generator=generator)[:, 0].to(probs.device)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def generate(decoder: nn.Module, conds: list[Tensor | Conditioning], config: GenerationConfig,
             generator: torch.Generator | None = None, progress: bool = False) -> list[Tensor]:
    """Generate waveforms for a batch of utterances.

    Args:
        conds: per utterance, its :class:`Conditioning`, or the whole Tensor[L, 2C, F_i]
            (:meth:`WaveNetDecoder.conditioning` of its latents).
    Returns:
        one waveform Tensor[F_i · hop] per utterance, floats in [-1, 1].
    """
    hop = decoder.hop_length
    pieces = []  # (utterance, start, keep_from, end)
    for u, cond in enumerate(conds):
        pieces += [(u, *s) for s in _segments(cond.shape[-1], config)]
    waves = []  # one Tensor[T_row] per piece, in order
    for first in range(0, len(pieces), config.max_batch):
        waves += _generate_rows(decoder, conds, pieces[first:first + config.max_batch], config, generator, progress)

    out = [torch.zeros(cond.shape[-1] * hop, device=cond.device) for cond in conds]
    for row, (u, start, keep_from, end) in enumerate(pieces):
        piece = waves[row][(keep_from - start) * hop:]
        fade = min(config.overlap_frames * hop, len(piece)) if keep_from > 0 else 0
        if fade:
            ramp = torch.linspace(0.0, 1.0, fade + 2, device=piece.device)[1:-1]
            region = out[u][keep_from * hop: keep_from * hop + fade]
            piece = piece.clone()
            piece[:fade] = (1 - ramp) * region + ramp * piece[:fade]
        out[u][keep_from * hop: end * hop] = piece
    return out
