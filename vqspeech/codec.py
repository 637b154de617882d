"""A real codec: the codes of a waveform, range-coded under the learned prior (``vqspeech compress``).

wav -> VQ-VAE encoder -> codes LongTensor[F] -> the prior's distributions of every code, in one parallel
pass -> a range coder (``constriction``) -> a .vqs file. Decoding runs the prior one code at a time from its
cache (each decoded code is the next input), then the model's decoder (WaveNet or parallel) synthesises the audio.

Arithmetic coding breaks if the two sides see even slightly different probabilities, and a parallel pass
and a cached step do not round alike, nor do two machines' SIMD kernels. So both sides run the prior in
float64 on the CPU on one thread and round its logits to a grid of 2^-LOGIT_BITS; from there on everything
is integer arithmetic (:func:`coding_probabilities`): each code's weight is a fixed-point exp of its
distance to the largest logit, read from a table built by exact integer multiplication, floored at
2^-FLOOR_BITS of the row's total, and divided by the total once in float64 (IEEE division rounds exactly
everywhere). The tables cannot depend on the SIMD kernel or the thread count; the two sides differ only
when a logit falls within about 1e-13 of a grid point. A 32-bit check of the codes in the header catches
that case (and any corrupt file) instead of decoding garbage. The floor also bounds the frame count a
payload can hold (every code costs at least :func:`min_bits_per_frame`), which the header is checked
against before anything is decoded.

The file (little-endian, version 3), 36 bytes of header, the pitch stream, then the coder's 32-bit words:
    "VQS" · version u8 · decoder u8 · model hash u32 · prior hash u32 · sample rate u32 · frames u32 ·
    check u32 · speaker u16 · pitch frames u32 · pitch bits u8 · register mean f16 · register std f16 ·
    pitch codes · payload
decoder is the kind of the model's decoder (:data:`DECODER_IDS`: a file of one decoder is refused by a model
of the other); the hashes are the first 8 hex digits of the checkpoints' SHA-256
(vqspeech.checkpoint.file_hash); check is the CRC-32 of the codes (and then of the pitch codes); speaker is
the index of a training speaker (NO_SPEAKER: the unconditional prior). A model with a pitch stream
(:mod:`vqspeech.models.pitch`) writes its codes at ``pitch bits`` each (⌈log2 levels⌉), packed
most-significant bit first and zero-padded to whole 32-bit words, and the utterance's register (mean and
std of log-F0); a model without one writes 0 frames. Version 2 files (27 bytes: no pitch fields) and
version 1 files (24 bytes: no decoder byte, a 16-bit check, the speaker before it; all made by WaveNet
models) still decode.
"""

from __future__ import annotations

import copy
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vqspeech.device import single_thread
from vqspeech.errors import UserError
from vqspeech.models.prior import Prior

MAGIC = b"VQS"
VERSION = 3
HEADER = struct.Struct("<3sBBIIIIIHIBee")
HEADER_V2 = struct.Struct("<3sBBIIIIIH")
HEADER_V1 = struct.Struct("<3sBIIIIHH")
DECODER_IDS = {"wavenet": 0, "parallel": 1}  # the header's decoder byte
NO_SPEAKER = 0xFFFF
LOGIT_BITS = 12


@dataclass(frozen=True)
class Header:
    model_hash: int
    prior_hash: int
    sample_rate: int
    frames: int
    speaker: int   # index into the run's speakers, or NO_SPEAKER
    check: int     # CRC-32 of the codes (version 1: its low 16 bits)
    decoder: str = "wavenet"  # the kind of the model's decoder
    version: int = VERSION
    pitch: tuple[int, ...] = ()       # the pitch stream's codes (a model with one)
    pitch_bits: int = 0               # bits per pitch code in the file
    register: tuple[float, float] = (0.0, 0.0)  # the utterance's pitch register (mean, std of log-F0; float16)

    def pack(self) -> bytes:
        """The header and the packed pitch codes (a multiple of 4 bytes)."""
        if self.version != VERSION:
            raise ValueError(f"only version {VERSION} headers are written (this one was read as version {self.version})")
        return HEADER.pack(MAGIC, VERSION, DECODER_IDS[self.decoder], self.model_hash, self.prior_hash,
                           self.sample_rate, self.frames, self.check, self.speaker, len(self.pitch), self.pitch_bits,
                           *self.register) + pack_pitch(self.pitch, self.pitch_bits)

    def checks(self, codes: torch.Tensor) -> bool:
        """Whether the codes (and the pitch codes) pass this header's check (32 bits; 16 in a version 1 file)."""
        crc = code_check(codes, self.pitch)
        return (crc & 0xFFFF if self.version == 1 else crc) == self.check


def pitch_bits(levels: int) -> int:
    """Bits per pitch code in a file: ⌈log2 levels⌉."""
    return max(1, (levels - 1).bit_length())


def pack_pitch(codes: tuple[int, ...], bits: int) -> bytes:
    """Codes of ``bits`` bits each, most significant bit first, zero-padded to whole 32-bit words."""
    if not codes:
        return b""
    flat = np.array([(c >> (bits - 1 - b)) & 1 for c in codes for b in range(bits)], dtype=np.uint8)
    packed = np.packbits(flat).tobytes()
    return packed + bytes(-len(packed) % 4)


def unpack_pitch(data: bytes, frames: int, bits: int) -> tuple[int, ...]:
    """The inverse of :func:`pack_pitch` (``data`` at least its size)."""
    if not frames:
        return ()
    flat = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[: frames * bits].reshape(frames, bits)
    return tuple(int(v) for v in flat.astype(np.int64) @ (1 << np.arange(bits - 1, -1, -1)))


def pitch_bytes(frames: int, bits: int) -> int:
    """The size of :func:`pack_pitch`'s output."""
    return -(-frames * bits // 32) * 4


def fingerprint(file_hash: str) -> int:
    """The u32 of a checkpoint's hash that a .vqs header holds."""
    return int(file_hash[:8], 16)


def code_check(codes: torch.Tensor, pitch: tuple[int, ...] = ()) -> int:
    """CRC-32 of LongTensor[F] codes (as little-endian int32), continued over the pitch codes (as u8) if any."""
    crc = zlib.crc32(codes.to(torch.int32).numpy().astype("<i4").tobytes())
    return zlib.crc32(bytes(pitch), crc) if pitch else crc


def coding_prior(prior: Prior) -> Prior:
    """A float64 CPU copy of the prior in eval mode: what both sides of the coder run."""
    return copy.deepcopy(prior).to("cpu", torch.float64).eval()


WEIGHT_BITS = 40        # fixed point of the exp table: the largest logit's weight is 2^40
MAX_GAP_NATS = 24       # logits further below the largest than this all get the table's last weight
FLOOR_BITS = 16         # every code keeps at least 2^-16 of its row's total weight
MAX_FRAMES = 2 ** 26    # 74 hours at 250 codes/s: a header claiming more is damaged


def min_bits_per_frame(codebook_size: int) -> float:
    """The least a code can cost under :func:`coding_probabilities`: the largest probability of a row is at
    most 1 − (K − 1)·f / (1 + K·f), f = 2^-FLOOR_BITS; halved for constriction's own quantisation."""
    floor = 2.0 ** -FLOOR_BITS
    return float(-np.log2(1 - (codebook_size - 1) * floor / (1 + codebook_size * floor)) / 2)


def max_frames(payload_bytes: int, codebook_size: int = 2) -> int:
    """The most frames a payload of ``payload_bytes`` can hold (a range coder spends at least the codes'
    information, less two words), at most MAX_FRAMES."""
    return min(MAX_FRAMES, int((8 * payload_bytes + 64) / min_bits_per_frame(codebook_size)))


def _exp_table() -> np.ndarray:
    """int64 [MAX_GAP_NATS · 2^LOGIT_BITS + 1]: round(2^WEIGHT_BITS · exp(−d / 2^LOGIT_BITS)), d = 0, 1, …,
    built by exact integer steps (Python ints), so every machine builds the same table."""
    from decimal import Decimal, getcontext

    getcontext().prec = 40
    step = int((Decimal(-1) / Decimal(2 ** LOGIT_BITS)).exp() * Decimal(2 ** 64))  # exp(−2^-12) in Q64
    weight, table = 2 ** 64, []
    for _ in range(MAX_GAP_NATS * 2 ** LOGIT_BITS + 1):
        table.append(weight >> (64 - WEIGHT_BITS))
        weight = (weight * step) >> 64
    return np.array(table, dtype=np.int64)


_EXP = _exp_table()


def coding_probabilities(logits: torch.Tensor) -> np.ndarray:
    """logits Tensor[..., K] -> float64 probabilities [..., K] that cannot depend on the CPU's kernels or
    threads: from the logits rounded to 2^-LOGIT_BITS, integer weights (the exp table), each floored at
    2^-FLOOR_BITS of its row's total, divided by their (exact) sum."""
    grid = torch.round(logits.double() * float(2 ** LOGIT_BITS)).to(torch.int64).numpy()
    gap = np.minimum(grid.max(axis=-1, keepdims=True) - grid, len(_EXP) - 1)
    weights = _EXP[gap]  # ≤ 2^40 each: a row of up to 2^12 codes sums exactly in int64 and in float64
    weights = np.maximum(weights, weights.sum(axis=-1, keepdims=True) >> FLOOR_BITS)
    probs = weights.astype(np.float64) / weights.sum(axis=-1, keepdims=True).astype(np.float64)
    return np.ascontiguousarray(probs)  # constriction reads rows from a C-ordered buffer


def legacy_probabilities(logits: torch.Tensor) -> np.ndarray:
    """Version 1 files' probabilities: a float64 softmax of the logits rounded to 2^-LOGIT_BITS."""
    scale = float(2 ** LOGIT_BITS)
    return torch.softmax(torch.round(logits.double() * scale) / scale, dim=-1).numpy()


def _speaker_input(speaker: int, vectors: torch.Tensor | None) -> torch.Tensor | None:
    if speaker == NO_SPEAKER:
        return None
    ids = torch.tensor([speaker])
    return ids if vectors is None else vectors[ids].double()


@torch.inference_mode()
def encode_codes(coder: Prior, codes: torch.Tensor, speaker: int, vectors: torch.Tensor | None = None) -> np.ndarray:
    """Range-code LongTensor[F] under ``coder`` (see :func:`coding_prior`) -> the coder's uint32 words."""
    import constriction

    with single_thread():  # as decoding runs it
        logits = coder(coder.inputs(codes[None]), _speaker_input(speaker, vectors))[0].T  # [F, K]
    probs = coding_probabilities(logits)
    encoder = constriction.stream.queue.RangeEncoder()
    if len(codes):
        encoder.encode(codes.numpy().astype(np.int32), constriction.stream.model.Categorical(perfect=False), probs)
    return encoder.get_compressed()


@torch.inference_mode()
def decode_codes(coder: Prior, words: np.ndarray, frames: int, speaker: int,
                 vectors: torch.Tensor | None = None, probabilities=coding_probabilities) -> torch.Tensor:
    """The inverse of :func:`encode_codes`: ``frames`` codes, LongTensor[F], decoded one at a time with the
    prior's cached steps (``probabilities``: :func:`legacy_probabilities` for a version 1 file)."""
    import constriction

    decoder = constriction.stream.queue.RangeDecoder(words)
    model = constriction.stream.model.Categorical(perfect=False)
    stepper = coder.stepper(_speaker_input(speaker, vectors), 1)
    previous = torch.full((1,), coder.bos, dtype=torch.long)
    codes = torch.empty(frames, dtype=torch.long)
    with single_thread():
        for t in range(frames):
            probs = probabilities(stepper.step(previous))  # [1, K]
            code = int(decoder.decode(model, probs)[0])
            codes[t] = code
            previous = torch.tensor([code])
    return codes


def write_vqs(path: str | Path, header: Header, words: np.ndarray, overwrite: bool = False) -> Path:
    from vqspeech.files import write_atomic

    path = Path(path)
    if path.exists() and not overwrite:
        raise UserError(f"{path} already exists; pass --overwrite to replace it")
    return write_atomic(path, header.pack() + words.astype("<u4").tobytes())


def read_vqs(path: str | Path) -> tuple[Header, np.ndarray]:
    """Header and payload of a .vqs file.

    Raises:
        UserError: not a .vqs file, another format version, or a file cut short (one line each).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read it ({exc.strerror})") from None
    if len(data) < HEADER_V1.size or data[:3] != MAGIC:
        raise UserError(f"{path}: not a .vqs file (vqspeech compress writes them)")
    version = data[3]
    kinds = {i: kind for kind, i in DECODER_IDS.items()}
    if version == 1:
        _, _, model_hash, prior_hash, rate, frames, speaker, check = HEADER_V1.unpack_from(data)
        header, size = Header(model_hash, prior_hash, rate, frames, speaker, check, "wavenet", 1), HEADER_V1.size
    elif version in (2, VERSION) and len(data) >= (HEADER_V2 if version == 2 else HEADER).size:
        fields = (HEADER_V2 if version == 2 else HEADER).unpack_from(data)
        _, _, decoder, model_hash, prior_hash, rate, frames, check, speaker = fields[:9]
        if decoder not in kinds:
            raise UserError(f"{path}: unknown decoder id {decoder} in the header (this vqspeech knows "
                            f"{', '.join(DECODER_IDS)}); the file is damaged or from a newer vqspeech")
        pitch, bits, register, size = (), 0, (0.0, 0.0), HEADER_V2.size
        if version == VERSION:
            n_pitch, bits, mean, std = fields[9:]
            size = HEADER.size + pitch_bytes(n_pitch, bits)
            if n_pitch and not 1 <= bits <= 8 or n_pitch > MAX_FRAMES or len(data) < size:
                raise UserError(f"{path}: the pitch stream's header is damaged or the file is cut short; "
                                f"compress the audio again")
            pitch, register = unpack_pitch(data[HEADER.size:size], n_pitch, bits), (float(mean), float(std))
        header = Header(model_hash, prior_hash, rate, frames, speaker, check, kinds[decoder], version, pitch, bits,
                        register)
    elif version in (2, VERSION):
        raise UserError(f"{path}: the file is cut short ({len(data)} bytes); compress the audio again")
    else:
        raise UserError(f"{path}: .vqs format version {version}; this vqspeech reads versions 1 to {VERSION}")
    payload = data[size:]
    if len(payload) % 4 or (header.frames and not payload):
        raise UserError(f"{path}: the file is cut short ({len(data)} bytes); compress the audio again")
    most = max_frames(len(payload)) if header.version > 1 else MAX_FRAMES
    if header.frames > most:
        raise UserError(f"{path}: the header claims {header.frames} frames, more than a {len(data)}-byte file "
                        f"can hold ({most}); the file is damaged")
    return header, np.frombuffer(payload, "<u4").astype(np.uint32)


@dataclass
class Compressed:
    """One file coded: its codes, its size and its rate."""

    source: Path
    output: Path
    codes: torch.Tensor     # LongTensor[F]
    seconds: float          # of audio
    file_bytes: int
    payload_bytes: int      # the range coder's words, without the header

    @property
    def bits_per_second(self) -> float:
        return 8 * self.file_bytes / self.seconds


def speaker_index(run, name: str | None) -> int:
    """The header's speaker of ``name`` (a training voice of the run), or NO_SPEAKER for None."""
    return NO_SPEAKER if name is None else run.model.speakers.index(name)


def speaker_vectors_input(run, speaker: str | None) -> torch.Tensor | None:
    """The coding prior's speaker input (float64) for a training voice of ``run`` by name (None: no speaker)."""
    from vqspeech.codes import speaker_vectors

    return _speaker_input(speaker_index(run, speaker), speaker_vectors(run))


def compress_file(run, prior, source: str | Path, output: str | Path, speaker: str | None,
                  overwrite: bool = False, coder: Prior | None = None) -> Compressed:
    """Encode an audio file with ``run``'s VQ-VAE and range-code its codes under ``prior`` (a LoadedPrior)."""
    from vqspeech.checkpoint import file_hash
    from vqspeech.codes import speaker_vectors
    from vqspeech.data.audio import load_audio

    source, output = Path(source), Path(output)
    wav = load_audio(source, run.sample_rate)
    codes = run.model.encode_waveform(wav).cpu()
    index = speaker_index(run, speaker)
    coder = coder or coding_prior(prior.model)
    words = encode_codes(coder, codes, index, speaker_vectors(run))
    pitch, bits, register = (), 0, (0.0, 0.0)
    if run.model.pitch is not None:
        stream = run.model.encode_pitch(wav)
        pitch, bits = tuple(int(c) for c in stream.codes.cpu()), pitch_bits(run.model.pitch.levels)
        register = tuple(float(np.float16(v)) for v in stream.register.cpu())
    header = Header(fingerprint(file_hash(run.checkpoint)), fingerprint(file_hash(prior.checkpoint)),
                    run.sample_rate, len(codes), index, code_check(codes, pitch), run.model.decoder.kind,
                    pitch=pitch, pitch_bits=bits, register=register)
    write_vqs(output, header, words, overwrite)
    return Compressed(source=source, output=output, codes=codes, seconds=len(wav) / run.sample_rate,
                      file_bytes=output.stat().st_size, payload_bytes=4 * len(words))


def decompress_codes(run, prior, source: str | Path, coder: Prior | None = None) -> tuple[Header, torch.Tensor]:
    """The codes of a .vqs file made by ``run`` and ``prior``.

    Raises:
        UserError: a file of another decoder, model or prior, a speaker the run lacks, or codes that fail the
            check.
    """
    from vqspeech.checkpoint import file_hash
    from vqspeech.codes import speaker_vectors

    header, words = read_vqs(source)
    if bool(header.pitch) != (run.model.pitch is not None):
        raise UserError(f"{source} was made by a model {'with' if header.pitch else 'without'} a pitch stream and "
                        f"this run has {'one' if run.model.pitch is not None else 'none'}; decompress it with the "
                        f"run that compressed it")
    if header.decoder != run.model.decoder.kind:
        raise UserError(f"{source} was made by a model with the {header.decoder} decoder and this run's decoder is "
                        f"{run.model.decoder.kind}; decompress it with the run that compressed it")
    if (header.model_hash, header.prior_hash) != (fingerprint(file_hash(run.checkpoint)),
                                                   fingerprint(file_hash(prior.checkpoint))):
        raise UserError(f"{source} was made by another model or prior (file {header.model_hash:08x}/"
                        f"{header.prior_hash:08x}, this run {file_hash(run.checkpoint)[:8]}/"
                        f"{file_hash(prior.checkpoint)[:8]}); decompress it with the run that compressed it")
    if header.speaker != NO_SPEAKER and header.speaker >= len(run.model.speakers.names):
        raise UserError(f"{source}: speaker {header.speaker} is not one of the run's {len(run.model.speakers.names)}")
    coder = coder or coding_prior(prior.model)
    most = max_frames(4 * len(words), coder.codebook_size)
    if header.version > 1 and header.frames > most:
        raise UserError(f"{source}: the header claims {header.frames} frames, more than its {4 * len(words)}-byte "
                        f"payload can hold under this prior ({most}); the file is damaged")
    try:
        codes = decode_codes(coder, words, header.frames, header.speaker, speaker_vectors(run),
                             legacy_probabilities if header.version == 1 else coding_probabilities)
    except (ValueError, RuntimeError) as exc:  # the coder ran out of words: a damaged payload
        raise UserError(f"{source}: the payload does not decode ({exc}); the file is damaged") from None
    if not header.checks(codes):
        raise UserError(f"{source}: the decoded codes fail the file's check: the file is damaged, or the prior "
                        f"computes differently here than where it was compressed")
    return header, codes
