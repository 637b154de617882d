"""vqspeech compare: runs side by side on one page."""

import json

import pytest

from tests.test_pages import Elements
from vqspeech.cli import main
from vqspeech.compare import _numbers, run_names


def test_compare_puts_the_same_utterances_curves_and_report_figures_side_by_side(trained_run, reference_run,
                                                                                  tiny_corpus, tmp_path, capsys):
    assert main(["report", "--run", str(trained_run), "--samples", "1", "--seconds", "0.2", "-q"]) == 0
    out = tmp_path / "cmp"
    assert main(["compare", str(trained_run), str(reference_run), "--out", str(out), "--utterances", "2",
                 "--seconds", "0.25", "-q"]) == 0
    assert "2 runs, 2 utterances" in capsys.readouterr().out

    data = json.loads((out / "compare.json").read_text())
    names = data["runs"]
    assert len(names) == 2 and names[0] != names[1]
    tests = {(r["speaker"], r["utterance"]) for r in map(json.loads, (tiny_corpus / "manifest.jsonl").open())
             if r["split"] == "test"}
    assert len(data["utterances"]) == 2 and {(u["speaker"], u["utterance"]) for u in data["utterances"]} <= tests
    for u in data["utterances"]:
        assert set(u["clips"]) == set(names)  # each utterance decoded by both runs
        for path in [u["original"], *(c["wav"] for c in u["clips"].values())]:
            assert (out / path).is_file()

    # the first run's report figures, read from its JSON; the second run has no report: empty cells
    report = json.loads((trained_run / "report" / "report.json").read_text())
    row = data["figures"]["report/report: test_loss"]
    assert row[0] == pytest.approx(report["test_loss"]) and row[1] is None

    page = Elements((out / "compare.html").read_text())
    sources = [a["src"] for a in page.all("audio")]
    assert len(sources) == 3 * len(data["utterances"])  # the original and each run's output
    assert all((out / s).is_file() for s in sources)
    assert "curves.png" in [a["src"] for a in page.all("img")] and (out / "curves.png").stat().st_size > 1000
    assert (out / "compare.md").read_text().count("| report/report: test_loss |") == 1


def test_compare_refuses_one_run_and_a_folder_it_did_not_make(trained_run, tmp_path, capsys):
    assert main(["compare", str(trained_run), "--out", str(tmp_path / "x")]) == 2
    assert "compare needs two runs or more" in capsys.readouterr().err
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert main(["compare", str(trained_run), str(trained_run), "--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "vqspeech did not make it" in err
    assert (mine / "notes.txt").read_text() == "keep me" and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_run_names_add_parents_until_unique_and_number_identical_paths(tmp_path):
    a, b = tmp_path / "x" / "run", tmp_path / "y" / "run"
    assert run_names([a, b]) == ["x/run", "y/run"]
    assert run_names([a, tmp_path / "other"]) == ["run", "other"]
    whole = "/".join(a.resolve().parts[1:])
    assert run_names([a, a]) == [f"{whole} (1)", f"{whole} (2)"]


def test_report_numbers_are_dotted_and_skip_per_item_lists():
    data = {"test_loss": 1.5, "used_codes": 12, "parallel": True, "latent_usage": {"drop": 0.25},
            "systems": [{"system": "model", "stoi": 0.8, "bitrate": None}],
            "rows": [{"system": "model", "stoi": 0.1}], "metrics": {"pnmi": [0.3, 0.5]}}
    assert dict(_numbers(data)) == {"test_loss": 1.5, "used_codes": 12.0, "latent_usage.drop": 0.25,
                                    "systems[model].stoi": 0.8}
