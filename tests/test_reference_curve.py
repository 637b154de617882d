"""The reference curve: audio-hours read, interpolation, the verdict, and the TensorBoard series."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vqspeech.reference import Curve, audio_hours, comparable, log_reference, standing

CONFIG = {"train": {"batch_size": 8, "crop_samples": 16000}, "data": {"sample_rate": 16000}}


def _curve():
    return Curve(name="ref", audio_hours=np.array([10.0, 20.0, 40.0]), valid=np.array([2.0, 1.8, math.nan]),
                 train=np.array([math.nan, 1.0, 0.9]), steps=np.array([4500, 9000, 18000]), corpus="libri")


def test_audio_hours_is_steps_times_batch_times_crop():
    assert audio_hours(450, CONFIG) == pytest.approx(450 * 8 / 3600)
    assert audio_hours(450, CONFIG, world_size=4) == pytest.approx(4 * 450 * 8 / 3600)


def test_the_reference_is_interpolated_between_its_validation_points_only():
    curve = _curve()
    assert curve.valid_at(15.0) == pytest.approx(1.9)
    assert curve.valid_at(10.0) == 2.0
    assert curve.valid_at(30.0) is None  # past the last validation point (40 h has no valid)
    assert curve.valid_at(5.0) is None


@pytest.mark.parametrize("ours, verdict", [(1.85, "ahead"), (1.9, "level"), (1.93, "level"), (1.95, "behind")])
def test_the_verdict_is_two_percent_either_way(ours, verdict):
    s = standing(_curve(), 15.0, ours, same_corpus=True)
    assert s.verdict == verdict
    line = s.describe()
    assert f"{verdict} at 15.0 h of audio: valid {ours:.4f} against 1.9000" in line and "loose" not in line


def test_outside_the_curve_and_another_corpus_are_said():
    assert ("outside the curve's 10.0–20.0 h (its nearest point, at 20.0 h: 1.8000); valid 1.0000"
            in standing(_curve(), 50.0, 1.0, True).describe())
    assert "another corpus" in standing(_curve(), 15.0, 1.0, False).describe()


def test_the_series_lands_at_this_runs_steps(tmp_path):
    written = []

    class Writer:
        def add_scalar(self, tag, value, step):
            written.append((tag, value, step))

    half = {"train": {"batch_size": 4, "crop_samples": 16000}, "data": {"sample_rate": 16000}}
    assert log_reference(Writer(), _curve(), half) == 2
    assert written == [("reference/valid", 2.0, 9000), ("reference/valid", 1.8, 18000)]  # half the batch: 2× steps


def test_curve_round_trips_through_csv(tmp_path):
    curve = _curve()
    curve.write(tmp_path / "c.csv", np.array([15.0, math.nan, math.nan]))
    back = Curve.read(tmp_path / "c.csv", "ref")
    assert np.array_equal(back.steps, curve.steps)
    assert np.allclose(back.valid, curve.valid, equal_nan=True) and np.allclose(back.train, curve.train, equal_nan=True)


def test_only_a_vqvae_with_the_curves_decoder_is_comparable():
    curve = _curve()
    assert comparable(curve, {"model": {"decoder": {"kind": "parallel"}}})
    assert not comparable(curve, {"model": {"decoder": {"kind": "wavenet"}}})
    assert not comparable(curve, {"kind": "prior", "model": {"decoder": {"kind": "parallel"}}})
    assert not comparable(None, {"model": {"decoder": {"kind": "parallel"}}})
