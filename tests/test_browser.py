"""Report pages in a real browser: headless Chromium opens them from disk (file://, no server) and every
player's source loads, every image draws, and the console logs no error.

The fast case, in the default suite, is a small page made by :func:`vqspeech.pages.write_report`. The slow
case opens the conversion report and the comparison page of tiny trained runs, and any pages given with
``--pages``; its screenshots go to ``--screenshots DIR`` (docs/images/ holds two).
"""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.browser import check_page, chromium, chromium_missing
from vqspeech.cli import main
from vqspeech.pages import image, listen, write_report
from vqspeech.plots import save_thumbnail

pytestmark = pytest.mark.skipif(chromium_missing() is not None, reason=str(chromium_missing()))


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


def screenshot_path(request, name: str, tmp_path: Path) -> Path:
    folder = request.config.getoption("--screenshots")
    return (Path(folder) if folder else tmp_path) / name


def small_page(folder: Path) -> Path:
    rate = 16000
    (folder / "wavs").mkdir()
    for i, seconds in enumerate((0.5, 1.25)):
        t = np.arange(int(seconds * rate)) / rate
        sf.write(folder / "wavs" / f"clip{i}.wav", 0.2 * np.sin(2 * np.pi * 300 * t), rate)
    save_thumbnail(folder / "figure.png", np.random.default_rng(0).normal(size=rate) * 0.1, rate)
    text = "\n".join(["# A small report", "", "| utterance | original | model |", "|---|---|---|",
                      f"| u1 | {listen('wavs/clip0.wav', 'original')} | {listen('wavs/clip1.wav', 'model')} |", "",
                      image("figure.png", "a figure"), ""])
    return write_report(folder, "report", text)[1]


def test_a_report_page_loads_every_player_and_image_in_chromium(browser, tmp_path):
    check = check_page(browser, small_page(tmp_path))
    assert check.broken == []
    assert [round(p["duration"], 2) for p in check.players] == [0.5, 1.25]  # the files' lengths, decoded
    assert len(check.images) == 3 and all(i["loaded"] for i in check.images)  # two spectrograms and the figure


def test_the_check_sees_a_missing_file_and_a_console_error(browser, tmp_path):
    page = small_page(tmp_path)
    (tmp_path / "wavs" / "clip1.wav").unlink()  # after the page was written: the player's source is gone
    (tmp_path / "figure.png").unlink()
    html = page.read_text().replace("</body>", "<script>console.error('boom')</script></body>")
    page.write_text(html)
    broken = check_page(browser, page).broken
    assert any("clip1.wav" in b and b.startswith("player") for b in broken)
    assert any(b.startswith("image") and "figure.png" in b for b in broken)
    assert any("boom" in b for b in broken)


@pytest.mark.slow
def test_conversion_and_compare_pages_of_trained_runs_load_in_chromium(browser, trained_run, reference_run,
                                                                      request, tmp_path):
    conversion, compared = tmp_path / "conversion", tmp_path / "compare"
    assert main(["evaluate-conversion", "--run", str(trained_run), "--out", str(conversion), "--sentences", "1",
                 "--seconds", "0.5", "-q"]) == 0
    assert main(["compare", str(trained_run), str(reference_run), "--out", str(compared), "--utterances", "2",
                 "--seconds", "0.5", "-q"]) == 0
    pages = [(conversion / "conversion.html", "conversion-page.png"), (compared / "compare.html", "compare-page.png")]
    pages += [(Path(p), f"{Path(p).parent.name}-{Path(p).stem}.png") for p in request.config.getoption("--pages")]
    for page, shot in pages:
        check = check_page(browser, page, screenshot_path(request, shot, tmp_path))
        assert check.broken == [], page
        assert check.players, page
