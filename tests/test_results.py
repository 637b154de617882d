"""The README's results table is exactly what tools/results.py makes from the committed benchmark files."""

import importlib.util


def load_results(repo_root):
    spec = importlib.util.spec_from_file_location("results", repo_root / "tools" / "results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_table_is_the_generated_one(repo_root):
    results = load_results(repo_root)
    readme = (repo_root / "README.md").read_text()
    made = results.table(repo_root / "benchmarks")
    assert results.readme_with(readme, made) == readme, "README.md's table is stale: python tools/results.py --write"
    assert made.count("\n") >= 5 and "MFCC k-means" in made and "Codec2 2400" in made


def test_the_table_follows_the_csv(repo_root, tmp_path):
    import shutil

    results = load_results(repo_root)
    for name in ("quality.csv", "librispeech.csv"):
        shutil.copy(repo_root / "benchmarks" / name, tmp_path / name)
    text = (tmp_path / "quality.csv").read_text().splitlines()
    header = text[0].split(",")
    stoi = header.index("stoi")
    import csv, io

    rows = list(csv.reader(io.StringIO("\n".join(text))))
    last = max((r for r in rows[1:] if r[0] == "default-60"), key=lambda r: float(r[header.index("minutes")]))
    last[stoi] = "0.1234"
    with (tmp_path / "quality.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    assert "| 0.123 |" in results.table(tmp_path).splitlines()[2]
