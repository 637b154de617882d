"""Evaluation: the run report (report.py), conversion (conversion.py, speaker_classifier.py),
reconstruction against baselines (reconstruction.py, baselines.py), phoneme probing (probing.py), plots."""
