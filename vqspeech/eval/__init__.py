"""Evaluation: the short run report (report.py)."""
