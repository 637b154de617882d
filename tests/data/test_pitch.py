"""F0 tracks, pooling and registers: a harmonic tone is tracked at its F0, silence is unvoiced, pooling is
exact on a hand-made track, the cache is reused by file stamp, and a reference without enough voiced
speech is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from vqspeech.data.pitch import PERIOD_MS, cached_tracks, pool, reference_register, register, track

SR = 16000


def tone(f0: float, seconds: float = 0.6) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.2 * sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8))).astype(np.float32)


@pytest.mark.parametrize("f0", [110.0, 220.0])
def test_a_harmonic_tone_is_tracked_at_its_f0_and_silence_is_unvoiced(f0):
    found = track(tone(f0), SR)
    assert len(found) == int(0.6 * SR / (SR * PERIOD_MS / 1000)) + 1
    assert np.median(found[found > 0]) == pytest.approx(f0, rel=0.02)
    assert (found > 0).mean() > 0.8
    assert not track(np.zeros(SR // 2, np.float32), SR).any()


def test_pooling_averages_the_voiced_log_f0_of_each_frame_exactly():
    # 5-ms frames (80 samples at 16 kHz); pitch frames of 320 samples = 4 of them
    f0 = np.array([100, 100, 200, 200,   0, 0, 0, 150,   120, 0, 120, 0], dtype=np.float32)
    log_f0, voiced = pool(f0, 0, 4, 320, SR)
    assert voiced.tolist() == [True, False, True, False]  # half voiced counts; one of four does not; past the end
    assert log_f0[0] == pytest.approx(np.log(100 * 200) / 2, rel=1e-6)
    assert log_f0[2] == pytest.approx(np.log(120), rel=1e-6) and log_f0[1] == log_f0[3] == 0
    shifted, _ = pool(f0, 160, 2, 320, SR)  # from sample 160: frames 2..5, then 6..9
    assert shifted[0] == pytest.approx(np.log(200), rel=1e-6)


def test_register_is_the_mean_and_spread_of_voiced_log_f0():
    f0 = np.array([0, 100, 0, 400, 0], dtype=np.float32)
    found = register(f0)
    assert found.mean == pytest.approx(np.log(200)) and found.std == pytest.approx(np.log(2))
    assert found.hz == pytest.approx(200)
    assert register(np.zeros(5, np.float32)) is None and register(f0, min_voiced_frames=3) is None


def test_a_reference_with_too_little_voiced_speech_is_refused_in_one_line():
    assert reference_register([tone(150.0, 1.0)], SR).hz == pytest.approx(150, rel=0.03)
    for short in (tone(150.0, 0.1), np.zeros(SR, np.float32)):
        with pytest.raises(ValueError, match="too little to measure its pitch") as err:
            reference_register([short], SR)
        assert "\n" not in str(err.value)


def test_tracks_are_cached_and_reused(tmp_path, caplog):
    path = tmp_path / "a.wav"
    sf.write(str(path), tone(180.0), SR, subtype="PCM_16")
    wav = sf.read(str(path), dtype="float32")[0]
    first = cached_tracks([(path, "")], [wav], SR, tmp_path)
    calls = []
    import vqspeech.data.pitch as pitch

    original = pitch.track
    pitch.track = lambda *a: calls.append(1) or original(*a)
    try:
        again = cached_tracks([(path, "")], [wav], SR, tmp_path)
    finally:
        pitch.track = original
    assert not calls and np.array_equal(first[0], again[0])
