"""Audio I/O and μ-law (audio.py), corpora and splits (corpus.py), training crops (dataset.py), corpus
preparation (prepare.py with vctk.py, librispeech.py, download.py; the offline demo corpus: demo.py),
phone alignments (alignments.py) and forced alignment (forced_align.py), features (features.py)."""
