"""Report pages: every report is written once as Markdown, and the same text becomes its HTML page.

``write_report(folder, "conversion", markdown)`` writes ``conversion.md`` and ``conversion.html`` side by side.
The page is the Markdown rendered (Python-Markdown, tables) into a Jinja2 template, with two additions:

- a link to an audio file (``[listen](wavs/a.wav)``, made by :func:`listen`) becomes an ``<audio>`` player
  with the file's log-mel spectrogram under it (``spectrograms/<the file's path>.png``, drawn on write);
- an image (``![confusion](confusion.png)``) stays an image.

Both come from the one Markdown text, so the page and the report cannot disagree. Every link is relative:
the folder can be zipped and opened anywhere, with no server and no network.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote

import jinja2
import markdown
from markdown.treeprocessors import Treeprocessor
from markupsafe import Markup

AUDIO_SUFFIXES = (".wav", ".flac")
SPECTROGRAMS = "spectrograms"  # the page's spectrogram images, inside the report folder


def listen(path: str | Path, label: str = "listen") -> str:
    """A Markdown link to an audio file, relative to the report folder: a player on the HTML page."""
    return f"[{label}]({quote(Path(path).as_posix())})"


def image(path: str | Path, alt: str) -> str:
    """A Markdown image, relative to the report folder."""
    return f"![{alt}]({quote(Path(path).as_posix())})"


def write_report(folder: str | Path, name: str, markdown_text: str) -> tuple[Path, Path]:
    """Write ``folder/name.md`` and ``folder/name.html`` (with its spectrograms) from one Markdown text.

    Returns: the two paths.
    """
    from vqspeech.files import write_atomic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    md, page = folder / f"{name}.md", folder / f"{name}.html"
    write_atomic(md, markdown_text)
    write_atomic(page, render_page(markdown_text, folder))
    return md, page


def render_page(markdown_text: str, folder: str | Path) -> str:
    """The HTML page of a report whose files (audio, images) are relative to ``folder``.

    Audio links become players; each player's spectrogram is drawn into ``folder/spectrograms/`` (redrawn when
    the audio is newer). A link to audio that does not exist becomes text marked missing, not a player.
    """
    folder = Path(folder)
    converter = markdown.Markdown(extensions=["tables", _PlayerExtension(folder)], output_format="html")
    body = converter.convert(markdown_text)
    title = next((line[2:].strip() for line in markdown_text.splitlines() if line.startswith("# ")), "vqspeech")
    environment = jinja2.Environment(loader=jinja2.PackageLoader("vqspeech", "templates"),
                                     autoescape=jinja2.select_autoescape(["html"]))
    return environment.get_template("page.html").render(title=title, body=Markup(body))


def spectrogram_path(audio: str) -> str:
    """Where the page keeps the spectrogram of ``audio`` (a path inside the report folder): the same path
    under ``spectrograms/``, so two files never share one."""
    return f"{SPECTROGRAMS}/{PurePosixPath(audio)}.png"


def _is_local_audio(href: str) -> bool:
    """A relative path to audio inside the report folder (not a URL, not absolute, no ``..``)."""
    return (not re.match(r"^[a-z][a-z0-9+.-]*:", href, re.I) and not href.startswith("/")
            and ".." not in PurePosixPath(href).parts and href.lower().endswith(AUDIO_SUFFIXES))


def _draw_spectrogram(audio: Path, image: Path) -> None:
    if image.exists() and image.stat().st_mtime >= audio.stat().st_mtime:
        return
    import soundfile as sf

    from vqspeech.plots import save_thumbnail

    wav, sample_rate = sf.read(str(audio), dtype="float32", always_2d=True)
    save_thumbnail(image, wav.mean(axis=1), sample_rate)


def _players(root: ET.Element, folder: Path) -> None:
    """Replace each audio link under ``root`` by a player and its spectrogram (in place)."""
    links = [(parent, child) for parent in root.iter() for child in parent
             if child.tag == "a" and _is_local_audio(unquote(child.get("href", "")))]
    for parent, link in links:  # collected first: each player holds a link to its file again
        href = unquote(link.get("href", ""))
        label = "".join(link.itertext())
        clip = ET.Element("span", {"class": "clip"})
        clip.tail, link.tail = link.tail, None
        if not (folder / href).is_file():
            missing = ET.SubElement(clip, "span", {"class": "missing"})
            missing.text = f"{label} (missing: {href})"
        else:
            ET.SubElement(clip, "audio", {"controls": "controls", "preload": "metadata", "src": quote(href)})
            shown = spectrogram_path(href)
            _draw_spectrogram(folder / href, folder / shown)
            ET.SubElement(clip, "img", {"class": "mel", "src": quote(shown), "alt": f"log-mel spectrogram of {href}"})
            caption = ET.SubElement(clip, "a", {"class": "label", "href": quote(href)})
            caption.text = label
        index = list(parent).index(link)
        parent.remove(link)
        parent.insert(index, clip)


class _Players(Treeprocessor):
    def __init__(self, md: markdown.Markdown, folder: Path):
        super().__init__(md)
        self.folder = folder

    def run(self, root: ET.Element) -> None:
        _players(root, self.folder)


class _PlayerExtension(markdown.Extension):
    """Audio links become players (a tree processor run after the inline patterns made the links)."""

    def __init__(self, folder: Path):
        super().__init__()
        self.folder = folder

    def extendMarkdown(self, md: markdown.Markdown) -> None:  # noqa: N802 (Python-Markdown's name)
        md.treeprocessors.register(_Players(md, self.folder), "vqspeech_players", 0)
