"""The speech metrics of one output against its reference, as :mod:`vqspeech.eval.reconstruction` scores
every system: :func:`score` compares the two over their common length.

* PESQ wide-band (ITU-T P.862.2, the ``pesq`` package) at 16 kHz (both resampled when the model rate
  differs); a silent reference (peak < 1e-4) or one shorter than 0.25 s is excluded, with the reason;
* STOI and extended STOI (``pystoi``); excluded when fewer than 30 frames (~0.4 s) of speech remain
  after pystoi drops silent frames, or when the reference is silent;
* log-mel L1 and MCD, the pinned definitions of :mod:`vqspeech.data.features` (MCD: order 24, c0
  dropped, cepstra of the 80-band log-amplitude mel spectrum, n_fft 1024, hop 256, DTW-aligned, no
  silence removal; not SPTK's mel-cepstrum);
* DNSMOS P.835 (SIG, BAK, OVRL; ``speechmos``, ONNX models shipped in its wheel) of the output alone;
  the slowest metric (about 1 s per output on 2 CPU cores: it scores 9 s windows, tiling shorter audio).

A metric that does not apply to a pair, or whose library refuses it, is left None and its reason recorded
in :attr:`Scores.excluded`; the other metrics still run.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields

import numpy as np

from vqspeech.data.audio import SILENCE_PEAK, resample
from vqspeech.data.features import log_mel_l1, mel_cepstral_distortion

PESQ_RATE = 16000           # wide-band PESQ and DNSMOS both work at 16 kHz
PESQ_MIN_SECONDS = 0.25     # the pesq package refuses shorter buffers


@dataclass
class Metrics:
    """One value per speech metric, in report order; None where the metric does not apply."""

    pesq: float | None = None
    stoi: float | None = None
    estoi: float | None = None
    log_mel_l1: float | None = None
    mcd: float | None = None
    dnsmos_ovrl: float | None = None
    dnsmos_sig: float | None = None
    dnsmos_bak: float | None = None


METRICS = [f.name for f in fields(Metrics)]


@dataclass
class Scores(Metrics):
    """Metrics of one output against its reference; None where ``excluded`` (metric -> reason) says why."""

    excluded: dict[str, str] = field(default_factory=dict)


class Dnsmos:
    """DNSMOS P.835 through speechmos; ``unavailable`` holds the reason when it cannot run here."""

    def __init__(self):
        self.unavailable: str | None = None
        try:
            from speechmos import dnsmos
            self._run = dnsmos.run
        except Exception as exc:  # onnxruntime missing, a broken wheel …
            self.unavailable = f"speechmos cannot be loaded ({type(exc).__name__}: {exc})"

    def __call__(self, wav: np.ndarray, sample_rate: int) -> dict[str, float]:
        """wav [T] -> {"ovrl", "sig", "bak"} (MOS, 1–5)."""
        audio = resample(wav, sample_rate, PESQ_RATE) if sample_rate != PESQ_RATE else wav
        result = self._run(np.clip(audio, -1.0, 1.0).astype(np.float32), PESQ_RATE)
        return {key: float(result[f"{key}_mos"]) for key in ("ovrl", "sig", "bak")}


def score(reference: np.ndarray, estimate: np.ndarray, sample_rate: int, dnsmos: Dnsmos | None = None,
          intrusive: bool = True) -> Scores:
    """Score estimate [T'] against reference [T] over their common length; see the module docstring.
    ``intrusive=False`` computes DNSMOS only."""
    n = min(len(reference), len(estimate))
    ref, est = reference[:n].astype(np.float32), estimate[:n].astype(np.float32)
    scores = Scores()
    if n == 0:
        scores.excluded["all"] = "empty audio"
        return scores
    if intrusive:
        silent = float(np.abs(ref).max()) < SILENCE_PEAK
        scores.pesq = _guarded(scores, "pesq", lambda: _pesq(ref, est, sample_rate, silent))
        stoi = _guarded(scores, "stoi", lambda: _stoi(ref, est, sample_rate, silent))
        if stoi is not None:
            scores.stoi, scores.estoi = stoi
        else:
            scores.excluded["estoi"] = scores.excluded["stoi"]
        scores.log_mel_l1 = log_mel_l1(ref, est, sample_rate)
        scores.mcd = mel_cepstral_distortion(ref, est, sample_rate)
    if dnsmos is not None and not dnsmos.unavailable:
        mos = _guarded(scores, "dnsmos", lambda: dnsmos(est, sample_rate))
        if mos is not None:
            scores.dnsmos_ovrl, scores.dnsmos_sig, scores.dnsmos_bak = mos["ovrl"], mos["sig"], mos["bak"]
    return scores


class _Excluded(Exception):
    """A metric that does not apply to this pair; the message is the reason."""


def _guarded(scores: Scores, name: str, compute):
    try:
        return compute()
    except _Excluded as exc:
        scores.excluded[name] = str(exc)
    except Exception as exc:  # a metric library refusing this input: recorded, the others still run
        message = exc.args[0] if exc.args else type(exc).__name__
        message = message.decode() if isinstance(message, bytes) else str(message)
        scores.excluded[name] = f"{type(exc).__name__}: {message}"
    return None


def _pesq(ref: np.ndarray, est: np.ndarray, sample_rate: int, silent: bool) -> float:
    from pesq import pesq

    if silent:
        raise _Excluded(f"silent reference (peak < {SILENCE_PEAK:g})")
    if len(ref) < PESQ_MIN_SECONDS * sample_rate:
        raise _Excluded(f"shorter than PESQ's minimum of {PESQ_MIN_SECONDS} s")
    if sample_rate != PESQ_RATE:
        ref, est = resample(ref, sample_rate, PESQ_RATE), resample(est, sample_rate, PESQ_RATE)
        n = min(len(ref), len(est))
        ref, est = ref[:n], est[:n]
    return float(pesq(PESQ_RATE, ref, est, "wb"))


def _stoi(ref: np.ndarray, est: np.ndarray, sample_rate: int, silent: bool) -> tuple[float, float]:
    from pystoi import stoi

    if silent:
        raise _Excluded(f"silent reference (peak < {SILENCE_PEAK:g})")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # pystoi warns and returns 1e-5 when too short
        try:
            return float(stoi(ref, est, sample_rate)), float(stoi(ref, est, sample_rate, extended=True))
        except RuntimeWarning:
            raise _Excluded("fewer than 30 frames (~0.4 s) of speech after removing silent frames") from None
