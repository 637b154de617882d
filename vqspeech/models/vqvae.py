"""The VQ-VAE: composition only. wav -> encoder -> bottleneck (VQ by default) -> decoder (+ speaker) -> audio.

The decoder is the paper's WaveNet (μ-law logits, generated sample by sample) or the parallel decoder (an
STFT per frame, one pass); the composition asks it for a loss and for audio (models/decoder.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from vqspeech.data.audio import de_emphasis, normalize_loudness, pre_emphasis
from vqspeech.models.adversary import SpeakerAdversary
from vqspeech.models.cpc import ContrastivePredictor
from vqspeech.models.decoder import Decoder
from vqspeech.models.encoder import ConvEncoder
from vqspeech.models.generation import GenerationConfig
from vqspeech.models.pitch import PitchCodes, PitchStream, register_tensor
from vqspeech.models.speaker import ReferenceSpeaker, SpeakerTable
from vqspeech.quantization import Bottleneck, BottleneckResult


@dataclass
class VQVAEOutput:
    """Result of a teacher-forced pass.

    Attributes:
        output: the decoder's: WaveNet logits Tensor[B, 256, T], parallel audio Tensor[B, 1, T].
        target: Tensor[B, 1, T], the signal the decoder reconstructs (the input, pre-emphasised).
        reconstruction: 0-dim, the decoder's reconstruction score (WaveNet: cross-entropy, nats per sample;
            parallel: STFT + mel loss), what validation compares.
        vq: the bottleneck's result (codes, losses, metrics).
        losses: unweighted terms by name: the decoder's (WaveNet "reconstruction", cross-entropy in nats per
            sample; parallel "stft" and "mel"), the bottleneck's terms (VQ: "commitment", "codebook"; VAE:
            "kl"), with a speaker adversary "speaker_adv", and with CPC "cpc".
        metrics: detached scalars: the bottleneck's, "speaker_adv_accuracy" with a speaker adversary,
            "cpc_accuracy" with CPC.
    """

    output: Tensor
    target: Tensor
    reconstruction: Tensor
    vq: BottleneckResult
    losses: dict[str, Tensor]
    metrics: dict[str, Tensor]


def time_jitter(latents: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """Chorowski et al. (2019)'s time-jitter: each frame of latents Tensor[B, D, F] is replaced, with
    probability p, by its left or right neighbour (equally likely; at the ends, by the one it has).
    The decoder then cannot rely on the exact position of a code, which pushes the codes toward slowly
    varying, phone-like content. Gradients flow to the frames that were used."""
    batch, _, frames = latents.shape
    if frames < 2:
        return latents
    u = torch.rand(batch, frames, device=latents.device, generator=generator)
    shift = torch.where(u < p / 2, -1, torch.where(u < p, 1, 0))
    position = torch.arange(frames, device=latents.device)
    index = position + shift
    index = torch.where((index < 0) | (index >= frames), position - shift, index)
    return latents.gather(2, index[:, None, :].expand_as(latents))


class VQVAE(nn.Module):
    """Holds the built parts; see :func:`vqspeech.models.build_model` for the construction from config."""

    # state entries of the training speakers (a table's embeddings, a reference model's speaker means, the
    # pitch registers, the speaker adversary's output layer): a model fine-tuned on another corpus keeps its own
    # (training/init_from.py)
    PER_SPEAKER = ("speakers.embedding.weight", "speakers.means", "pitch_registers", "adversary.net.4.weight",
                   "adversary.net.4.bias")
    # the model settings that fix what the weights compute: what fine-tuning needs equal (a stride changes the
    # hop, not a weight's shape); IGNORED of those change no weight's meaning (a check, a generation chunk)
    ARCHITECTURE = ("encoder", "decoder", "bottleneck.kind", "bottleneck.codebook_size", "speaker_dim", "speaker",
                    "pitch", "preemphasis", "speaker_adversary", "cpc_steps")
    IGNORED = ("encoder.hop", "decoder.chunk_frames")

    def __init__(self, encoder: ConvEncoder, bottleneck: Bottleneck, decoder: Decoder,
                 speakers: SpeakerTable | ReferenceSpeaker, jitter: float = 0.0, preemphasis: float = 0.0,
                 adversary: SpeakerAdversary | None = None, cpc: ContrastivePredictor | None = None,
                 loudness_lufs: float | None = None, sample_rate: int = 16000, pitch: PitchStream | None = None):
        super().__init__()
        if not 0.0 <= jitter <= 0.5:
            raise ValueError(f"model.jitter must lie in [0, 0.5], got {jitter}")
        if not 0.0 <= preemphasis < 1.0:
            raise ValueError(f"model.preemphasis must lie in [0, 1), got {preemphasis}")
        self.encoder = encoder
        self.bottleneck = bottleneck
        self.decoder = decoder
        self.speakers = speakers
        self.jitter = jitter
        self.preemphasis = preemphasis  # α of the decoder's targets; generated audio is de-emphasised
        self.adversary = adversary  # a speaker classifier on z_e behind gradient reversal, in training only
        self.cpc = cpc  # contrastive prediction of future z_e frames, in training only
        self.sample_rate = sample_rate  # of the audio it was trained on (Hz)
        self.loudness_lufs = loudness_lufs  # the input level every utterance is scaled to before encoding (None: as is)
        self.pitch = pitch  # the pitch stream beside the codes (None: the decoder gets the codes alone)
        if pitch is not None:
            if pitch.hop % encoder.hop_length:
                raise ValueError(f"model.pitch.hop={pitch.hop} must be a multiple of the encoder hop "
                                 f"({encoder.hop_length})")
            # each training speaker's register (mean, std of log-F0), set from the training audio
            self.register_buffer("pitch_registers", torch.zeros(len(speakers.names), 2))

    @property
    def hop_length(self) -> int:
        return self.encoder.hop_length

    @property
    def device(self) -> torch.device:
        """Where the parameters are (inputs go there)."""
        return next(self.parameters()).device

    def encode(self, wav: Tensor) -> BottleneckResult:
        """wav: Tensor[B, 1, T], T a multiple of hop_length -> BottleneckResult (F = T / hop frames)."""
        return self.bottleneck(self.encoder(wav))

    @torch.no_grad()
    def encode_waveform(self, wav: np.ndarray, latents: bool = False) -> Tensor:
        """One waveform's codes: wav float32 [T] (a whole utterance: scaled to ``loudness_lufs`` first, when the
        model has an input level), zero-padded to a multiple of hop_length, on self.device.

        Returns:
            codes, F = ⌈T / hop⌉ frames: LongTensor[F] for a discrete bottleneck, Tensor[D, F] latents for a
            continuous one; with ``latents``, the encoder output z_e Tensor[D, F] instead (before the bottleneck).
        """
        wav = normalize_loudness(wav, self.sample_rate, self.loudness_lufs)
        padded = torch.from_numpy(np.pad(wav, (0, -len(wav) % self.hop_length))).to(self.device)[None, None]
        return self.encoder(padded)[0] if latents else self.encode(padded).codes[0]

    def pitch_input(self, wav: np.ndarray) -> tuple[Tensor, Tensor]:
        """What :meth:`forward` takes as ``pitch`` for one whole utterance wav float32 [T] (a model with a
        pitch stream; at the level the model reads it): (f0 Tensor[1, 2, P], register Tensor[1, 2]) with
        P = ⌈T / pitch hop⌉, on self.device. An utterance with no voiced frame gets a register at 150 Hz."""
        from vqspeech.data.pitch import pool, register, track

        if self.pitch is None:
            raise ValueError("this model has no pitch stream")
        f0 = track(wav, self.sample_rate)
        log_f0, voiced = pool(f0, 0, -(-len(wav) // self.pitch.hop), self.pitch.hop, self.sample_rate)
        reg = register_tensor(register(f0))
        stacked = torch.from_numpy(np.stack([log_f0, voiced.astype(np.float32)]))[None]
        return stacked.to(self.device), reg[None].to(self.device)

    @torch.no_grad()
    def encode_pitch(self, wav: np.ndarray) -> PitchCodes:
        """One waveform's pitch stream (a model with ``pitch``): wav float32 [T], a whole utterance, as
        :meth:`encode_waveform` takes it (scaled to the input level first) -> PitchCodes (P = ⌈T / pitch hop⌉
        frames, and the utterance's own register)."""
        f0, reg = self.pitch_input(normalize_loudness(wav, self.sample_rate, self.loudness_lufs))
        codes = self.pitch.quantize(f0[:, 0], f0[:, 1] > 0.5, reg)[0]
        return PitchCodes(codes=codes, register=reg[0])

    def encode_pitches(self, waves: list[np.ndarray]) -> list[PitchCodes] | None:
        """:meth:`encode_pitch` of each wave (in its own register; :meth:`PitchCodes.in_register` moves it),
        for :meth:`decode`; None for a model without a pitch stream."""
        if self.pitch is None:
            return None
        return [self.encode_pitch(w) for w in waves]

    def append_pitch(self, latents: Tensor, codes: Tensor, register: Tensor) -> Tensor:
        """What the decoder reads with a pitch stream: latents Tensor[B, D, F], pitch codes LongTensor[B, P] and
        registers Tensor[B, 2] -> Tensor[B, D + 2, F] (the decoded log-F0 and voicing at the content rate)."""
        features = self.pitch.features(codes.to(latents.device), register.to(latents.device), latents.shape[-1],
                                       self.hop_length)
        return torch.cat([latents, features.to(latents.dtype)], dim=1)

    def speaker_register(self, speaker_ids: Tensor) -> Tensor:
        """Training speakers' pitch registers: LongTensor[B] -> Tensor[B, 2] (mean, std of log-F0)."""
        return self.pitch_registers[speaker_ids.to(self.pitch_registers.device)]

    def target_signal(self, wav: Tensor) -> Tensor:
        """What the decoder reconstructs: wav Tensor[B, 1, T] -> Tensor[B, 1, T], pre-emphasised by
        ``preemphasis`` (0: as it is). The WaveNet predicts its μ-law samples."""
        return pre_emphasis(wav, self.preemphasis)

    def forward(self, wav: Tensor, speaker_ids: Tensor, speaker_vectors: Tensor | None = None,
                speaker_audio: Tensor | None = None, encoder_wav: Tensor | None = None,
                pitch: tuple[Tensor, Tensor] | None = None) -> VQVAEOutput:
        """wav: Tensor[B, 1, T] in [-1, 1]; speaker_ids: LongTensor[B]; speaker_vectors: Tensor[B, V], the
        voice of each crop from other audio (a reference model; None: the speakers' own conditioning), or
        speaker_audio Tensor[B, 1, R], that other audio itself (a reference model with a learned encoder).
        encoder_wav: Tensor[B, 1, T], what the encoder reads instead of wav (a voice-randomised copy, in
        training with model.perturb); the decoder still reconstructs wav. pitch: with a pitch stream, each
        crop's (f0 Tensor[B, 2, P]: log-F0 and voicing per pitch frame, register Tensor[B, 2])."""
        if speaker_audio is not None:
            speaker_vectors = self.speakers.embed_audio(speaker_audio)
        target = self.target_signal(wav)
        z_e = self.encoder(wav if encoder_wav is None else encoder_wav)
        vq = self.bottleneck(z_e)
        latents = time_jitter(vq.quantized, self.jitter) if self.training and self.jitter else vq.quantized
        if self.pitch is not None:
            if pitch is None:
                raise ValueError("this model has a pitch stream: give each crop's F0 and register")
            f0, register = pitch
            codes = self.pitch.quantize(f0[:, 0], f0[:, 1] > 0.5, register)
            latents = self.append_pitch(latents, codes, register)
        decoded = self.decoder.loss(target, latents, self.speakers(speaker_ids, speaker_vectors))
        losses = {**decoded.losses, **vq.losses}
        metrics = {**vq.metrics, **decoded.metrics}
        if self.adversary is not None and self.training:
            adversary = self.adversary(z_e, speaker_ids)
            losses["speaker_adv"], metrics["speaker_adv_accuracy"] = adversary.loss, adversary.accuracy
        if self.cpc is not None and self.training:
            cpc = self.cpc(z_e)
            losses["cpc"], metrics["cpc_accuracy"] = cpc.loss, cpc.accuracy
        return VQVAEOutput(output=decoded.output, target=target, reconstruction=decoded.score, vq=vq,
                           losses=losses, metrics=metrics)

    @torch.inference_mode()
    def decode(self, codes: list[Tensor], speaker_ids: Tensor | None, config: GenerationConfig | None = None,
               generator: torch.Generator | None = None, progress: bool = False,
               speaker_vectors: Tensor | None = None, pitch: list[PitchCodes] | None = None) -> list[Tensor]:
        """Generate audio from codes, one utterance per entry (the WaveNet in one batch; the decoder's
        :meth:`~vqspeech.models.decoder.Decoder.generate`; ``config`` matters to the WaveNet only).

        Args:
            codes: per utterance, as :meth:`encode_waveform` gives them (LongTensor[F_i], or Tensor[D, F_i]).
            speaker_ids: LongTensor[B], the voice to generate each utterance in (a training speaker).
            speaker_vectors: Tensor[B, V] instead, voices given by reference audio (a reference model).
            pitch: with a pitch stream, each utterance's (:meth:`encode_pitch`; its register is the pitch
                the output speaks in: :meth:`PitchCodes.in_register` moves it to a target's).
        Returns:
            waveform Tensor[F_i · hop] per utterance (de-emphasised when the model was trained pre-emphasised).
        """
        speakers = self.speakers(speaker_ids, speaker_vectors)
        latents = [self.bottleneck.decode(c[None])[0] for c in codes]
        if self.pitch is not None:
            if pitch is None or len(pitch) != len(codes):
                raise ValueError("this model has a pitch stream: give each utterance's pitch codes "
                                 "(model.encode_pitch) to decode it")
            latents = [self.append_pitch(z[None], p.codes[None], p.register[None])[0] for z, p in zip(latents, pitch)]
        generated = self.decoder.generate(latents, speakers, config or GenerationConfig(), generator, progress)
        return [de_emphasis(w, self.preemphasis).clamp(-1.0, 1.0) if self.preemphasis else w for w in generated]

    def summary(self) -> str:
        def count(m: nn.Module) -> str:
            return f"{sum(p.numel() for p in m.parameters()) / 1e6:.2f}M"

        return (f"VQVAE: {count(self)} parameters\n"
                f"  encoder   {count(self.encoder)}, hop {self.hop_length} samples\n"
                f"  bottleneck {self.bottleneck.extra_repr()}\n"
                f"  decoder   {count(self.decoder)}, {self.decoder.describe()}\n"
                f"  speakers  {self.speakers.kind}: {len(self.speakers.names)} voices, {self.speakers.dim}-d"
                + (f"\n  pitch     {self.pitch.extra_repr()}, "
                   f"{self.pitch.bits_per_second(self.sample_rate):.0f} bit/s" if self.pitch is not None else ""))
