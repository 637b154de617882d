"""Evaluation: the run report (report.py), conversion (conversion.py, speaker_classifier.py),
reconstruction against baselines (reconstruction.py, speech_metrics.py, baselines.py), phoneme probing
(probing.py, abx.py, logistic.py), alignment boundary error (boundaries.py), plots (plots.py)."""
