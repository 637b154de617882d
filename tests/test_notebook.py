"""docs/quickstart.ipynb runs headless (nbclient) on the tiny trained run: no cell fails, and it shows the
spectrogram figure and three audio players."""

import sys

import pytest


def test_the_quickstart_notebook_runs_headless(repo_root, trained_run, tiny_corpus, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("VQSPEECH_RUN", str(trained_run))
    monkeypatch.setenv("VQSPEECH_WAV", str(sorted(tiny_corpus.glob("spk_a/*.wav"))[0]))
    monkeypatch.setenv("VQSPEECH_SPEAKER", "spk_a")
    monkeypatch.setenv("VQSPEECH_TARGET", "spk_b")
    notebook = nbformat.read(repo_root / "docs" / "quickstart.ipynb", as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(repo_root)}})
    client.execute()  # raises CellExecutionError, with the cell's traceback, if any cell fails
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the spectrograms and codes
    assert sum("<audio" in o.get("data", {}).get("text/html", "") for o in outputs) == 3
    text = "".join(o.get("text", "") for o in outputs)
    assert "codes at 250 Hz" in text and "spk_a" in text
