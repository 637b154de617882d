"""Spectral reconstruction losses of a waveform against its target, for the parallel decoder.

* :class:`MultiResolutionSTFTLoss` (Yamamoto et al. 2020, Parallel WaveGAN §2.3): at each (FFT size, hop),
  spectral convergence ‖|S| − |Ŝ|‖_F / ‖|S|‖_F plus the mean L1 distance of log magnitudes; averaged over
  resolutions.
* :class:`MultiScaleMelLoss` (HiFi-GAN's mel L1 taken at several window sizes, as descript-audio-codec does):
  the mean L1 distance of log10 mel magnitudes; averaged over scales.

Both compute in float32 outside autocast (bf16 FFTs lose the quiet bins), on the input's device.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

EPS = 1e-5  # magnitude floor before the log (−100 dB re. full scale)


def stft_magnitude(wav: Tensor, n_fft: int, hop: int, window: Tensor) -> Tensor:
    """wav: Tensor[B, T] -> |STFT| Tensor[B, n_fft / 2 + 1, frames] (Hann window of n_fft, centred frames, zeros
    beyond the ends, so a signal shorter than the window is scored too)."""
    spec = torch.stft(wav, n_fft, hop, window=window, center=True, pad_mode="constant", return_complex=True)
    return spec.abs()


class MultiResolutionSTFTLoss(nn.Module):
    """Args: resolutions: (n_fft, hop) pairs, e.g. ((256, 64), (512, 128), (1024, 256))."""

    def __init__(self, resolutions: list[tuple[int, int]]):
        super().__init__()
        if not resolutions:
            raise ValueError("the STFT loss needs at least one (n_fft, hop) resolution")
        self.resolutions = [(int(n), int(h)) for n, h in resolutions]
        for i, (n_fft, _) in enumerate(self.resolutions):
            self.register_buffer(f"window{i}", torch.hann_window(n_fft), persistent=False)

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        """output, target: Tensor[B, 1, T] -> 0-dim loss."""
        with torch.autocast(device_type=output.device.type, enabled=False):
            x, y = output[:, 0].float(), target[:, 0].float()
            total = x.new_zeros(())
            for i, (n_fft, hop) in enumerate(self.resolutions):
                window = getattr(self, f"window{i}")
                mag_x, mag_y = stft_magnitude(x, n_fft, hop, window), stft_magnitude(y, n_fft, hop, window)
                convergence = torch.linalg.norm(mag_y - mag_x) / torch.linalg.norm(mag_y).clamp(min=EPS)
                log_distance = (mag_y.clamp(min=EPS).log() - mag_x.clamp(min=EPS).log()).abs().mean()
                total = total + convergence + log_distance
            return total / len(self.resolutions)


class MultiScaleMelLoss(nn.Module):
    """Args: sample_rate: Hz; scales: (window = n_fft, mel bands) pairs, hop = window / 4 each."""

    def __init__(self, sample_rate: int, scales: list[tuple[int, int]]):
        super().__init__()
        import torchaudio

        if not scales:
            raise ValueError("the mel loss needs at least one (window, n_mels) scale")
        self.scales = [(int(w), int(m)) for w, m in scales]
        for i, (window, n_mels) in enumerate(self.scales):
            fbank = torchaudio.functional.melscale_fbanks(window // 2 + 1, 0.0, sample_rate / 2, n_mels,
                                                          sample_rate, norm="slaney", mel_scale="slaney")
            self.register_buffer(f"fbank{i}", fbank.T.contiguous(), persistent=False)  # [n_mels, bins]
            self.register_buffer(f"window{i}", torch.hann_window(window), persistent=False)

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        """output, target: Tensor[B, 1, T] -> 0-dim loss."""
        with torch.autocast(device_type=output.device.type, enabled=False):
            x, y = output[:, 0].float(), target[:, 0].float()
            total = x.new_zeros(())
            for i, (window, _) in enumerate(self.scales):
                fbank, win = getattr(self, f"fbank{i}"), getattr(self, f"window{i}")
                mel_x = fbank @ stft_magnitude(x, window, window // 4, win)
                mel_y = fbank @ stft_magnitude(y, window, window // 4, win)
                total = total + (mel_y.clamp(min=EPS).log10() - mel_x.clamp(min=EPS).log10()).abs().mean()
            return total / len(self.scales)
