"""Audio I/O and μ-law (audio.py), corpora and splits (corpus.py), training crops (dataset.py),
the offline demo corpus (demo.py)."""
