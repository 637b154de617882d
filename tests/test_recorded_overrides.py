"""Every override recorded in a benchmarks/*.csv row still composes with the recipe the row was run with.

A row is re-run as recorded (tools/bench_quality.py --recipe RECIPE --name NAME OVERRIDES); this checks that
the current config code accepts OVERRIDES, in the spelling the CSV holds. The recipe of each CSV:

* benchmarks/librispeech.csv, and any row whose overrides name data/librispeech-excerpt (voice-levers.csv):
  recipes/librispeech (tools/bench_quality.py --recipe recipes/librispeech, the default CSV of that recipe);
* benchmarks/bottlenecks.csv: recipes/bottlenecks (benchmarks/run_final.sh);
* every other CSV: recipes/demo, tools/bench_quality.py's default recipe.

Composition reads only the recipe and configs/, never the corpus, so the test runs from an empty folder.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from vqspeech.config import compose_recipe

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO_ROOT / "benchmarks"
RECIPES = REPO_ROOT / "recipes"
# what tools/bench_quality.py appends to a row's overrides before composing (its defaults: 15 minutes, every 5)
HARNESS = ["run_dir=runs/quality/recorded", "train.max_minutes=15", "train.snapshot_minutes=5",
           "train.audio_every=null"]


def recipe_of(csv_path: Path, overrides: str) -> Path:
    if csv_path.name == "librispeech.csv" or "data/librispeech-excerpt" in overrides:
        return RECIPES / "librispeech"
    if csv_path.name == "bottlenecks.csv":
        return RECIPES / "bottlenecks"
    return RECIPES / "demo"


def recorded() -> list[tuple[str, Path, list[str]]]:
    """(id, recipe, overrides) for each distinct recorded configuration, id naming its first CSV line."""
    cases, seen = [], set()
    for path in sorted(BENCHMARKS.rglob("*.csv")):
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            if "overrides" not in (reader.fieldnames or []):
                continue
            for row in reader:
                recipe = recipe_of(path, row["overrides"])
                overrides = row["overrides"].split()
                key = (recipe, tuple(overrides))
                if key not in seen:
                    seen.add(key)
                    cases.append((f"{path.relative_to(BENCHMARKS)}:{reader.line_num}:{row['name']}", recipe, overrides))
    return cases


CASES = recorded()


def test_the_recorded_rows_are_found():
    files = {case_id.split(":")[0] for case_id, _, _ in CASES}
    assert {"librispeech.csv", "levers.csv", "quality.csv", "bottlenecks.csv"} <= files
    assert any(recipe.name == "librispeech" for _, recipe, _ in CASES)


@pytest.mark.parametrize("recipe, overrides", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_recorded_overrides_compose(recipe, overrides, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no corpus, no runs/: composing must not need them
    cfg = compose_recipe(recipe, [*overrides, *HARNESS])
    assert cfg.train.max_minutes == 15
