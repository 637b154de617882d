"""Report pages: the HTML beside each Markdown report, rendered from the same text."""

import os
from html.parser import HTMLParser

import numpy as np
import soundfile as sf

from vqspeech.pages import image, listen, render_page, spectrogram_path, write_report


class Elements(HTMLParser):
    """(tag, attributes) of every start tag, and the page's text."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def all(self, tag: str) -> list[dict]:
        return [a for t, a in self.tags if t == tag]


def tone(path, seconds=0.5, sample_rate=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    sf.write(path, 0.3 * np.sin(2 * np.pi * 220 * t), sample_rate)


def test_each_audio_link_becomes_a_player_with_its_spectrogram(tmp_path):
    tone(tmp_path / "wavs" / "a b.wav")
    tone(tmp_path / "wavs" / "c.wav")
    text = "\n".join(["# Two clips", "", "| utterance | original | model |", "|---|---|---|",
                      f"| u1 | {listen('wavs/a b.wav', 'original')} | {listen('wavs/c.wav', 'model')} |", ""])
    md, page = write_report(tmp_path, "report", text)
    assert md.read_text() == text
    html = Elements(page.read_text())
    assert [a["src"] for a in html.all("audio")] == ["wavs/a%20b.wav", "wavs/c.wav"]
    images = [a["src"] for a in html.all("img")]
    assert images == ["spectrograms/wavs/a%20b.wav.png", "spectrograms/wavs/c.wav.png"]
    for src in ("spectrograms/wavs/a b.wav.png", "spectrograms/wavs/c.wav.png"):
        assert (tmp_path / src).stat().st_size > 1000
        assert (tmp_path / src).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(html.all("tr")) == 2  # the header and one row, as in the Markdown
    assert html.all("title") and "Two clips" in html.text


def test_a_missing_file_stays_a_marked_link_not_a_player(tmp_path):
    html = Elements(render_page(f"# r\n\n{listen('wavs/gone.wav', 'model')}\n", tmp_path))
    assert html.all("audio") == [] and html.all("img") == []
    assert [a["class"] for _, a in html.tags if a.get("class") == "missing"] == ["missing"]
    assert "model (missing: wavs/gone.wav)" in "".join(html.text)
    assert not (tmp_path / "spectrograms").exists()


def test_other_links_images_and_text_are_left_as_markdown_renders_them(tmp_path):
    tone(tmp_path / "x.wav")
    text = (f"# r <b>\n\n[remote](https://example.org/x.wav) [page](other.html) {image('conf.png', 'confusion')} "
            f"[abs](/tmp/x.wav) [up](../x.wav) a < b\n")
    html = render_page(text, tmp_path)
    parsed = Elements(html)
    assert parsed.all("audio") == []
    assert [a["href"] for a in parsed.all("a")] == ["https://example.org/x.wav", "other.html", "/tmp/x.wav",
                                                     "../x.wav"]
    assert [a["src"] for a in parsed.all("img")] == ["conf.png"]
    assert "a &lt; b" in html  # text is escaped, not injected
    assert "<title>r &lt;b&gt;</title>" in html


def test_a_spectrogram_is_redrawn_only_when_its_audio_is_newer(tmp_path):
    tone(tmp_path / "a.wav")
    text = f"# r\n\n{listen('a.wav')}\n"
    render_page(text, tmp_path)
    drawn = tmp_path / spectrogram_path("a.wav")
    os.utime(drawn, (1e9, 1e9))  # older than the audio: redrawn
    render_page(text, tmp_path)
    assert drawn.stat().st_mtime > 1e9
    before = drawn.stat().st_mtime_ns
    render_page(text, tmp_path)  # newer than the audio: kept
    assert drawn.stat().st_mtime_ns == before


def test_spectrogram_names_are_distinct_per_audio_path():
    paths = ("wavs/a.wav", "wavs_a.wav", "x/y z.wav", "x/y_z.wav", "x//y_z.wav")
    assert len({spectrogram_path(p) for p in paths}) == 4  # x//y_z.wav is x/y_z.wav
    assert spectrogram_path("wavs/a.wav") == "spectrograms/wavs/a.wav.png"


def test_listen_and_image_quote_paths_so_markdown_keeps_them_whole():
    assert listen("wavs/a b.wav", "x") == "[x](wavs/a%20b.wav)"
    assert image("a (1).png", "alt") == "![alt](a%20%281%29.png)"
