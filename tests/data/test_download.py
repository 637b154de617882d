"""Downloading an archive: a local HTTP server on 127.0.0.1 that honours Range (and can cut a response short),
resuming, checksums, unzip, and prepare vctk --download end to end. Nothing leaves the machine."""

import hashlib
import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile as sf

from vqspeech.data.download import download, extract_zip, parse_checksum
from vqspeech.data.prepare import SplitPolicy
from vqspeech.data.vctk import prepare_vctk
from vqspeech.errors import UserError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class Server:
    """Serves ``files`` (name -> bytes); records each request's Range header; ``cut`` sends only that many body
    bytes of the next responses (announcing the full length) and hangs up; ``ranges`` False ignores Range."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[str | None] = []
        self.cut: list[int] = []
        self.ranges = True
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.headers.get("Range"))
                data = server.files.get(self.path.lstrip("/"))
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                start = int(self.headers["Range"][6:].rstrip("-")) if self.headers["Range"] and server.ranges else 0
                if start >= len(data) > 0:
                    self.send_error(416, "Range Not Satisfiable")
                    return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                self.wfile.write(body[: server.cut.pop(0)] if server.cut else body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"


@pytest.fixture
def server():
    s = Server()
    s.files["data.bin"] = PAYLOAD
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_full_download_with_checksum(server, tmp_path):
    got = download(server.url("data.bin"), tmp_path / "data.bin", sha256(PAYLOAD), progress=False)
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD and not (tmp_path / "data.bin.part").exists()
    assert (got.size, got.reused, server.requests) == (len(PAYLOAD), False, [None])
    again = download(server.url("data.bin"), tmp_path / "data.bin", sha256(PAYLOAD), progress=False)
    assert again.reused and server.requests == [None]  # a finished file is checked, not fetched


def test_an_interrupted_response_is_resumed_with_range(server, tmp_path):
    server.cut = [300_000, 200_000]  # two responses cut short, then a whole one
    md5 = "md5:" + hashlib.md5(PAYLOAD).hexdigest()
    download(server.url("data.bin"), tmp_path / "data.bin", md5, progress=False)
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD
    assert server.requests == [None, "bytes=300000-", "bytes=500000-"]


def test_a_partial_file_from_an_earlier_run_is_resumed(server, tmp_path):
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:123_456])
    download(server.url("data.bin"), tmp_path / "data.bin", sha256(PAYLOAD), progress=False)
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD
    assert server.requests == ["bytes=123456-"]


def test_a_server_that_ignores_range_is_read_from_the_start(server, tmp_path):
    server.ranges = False
    (tmp_path / "data.bin.part").write_bytes(b"stale bytes")
    download(server.url("data.bin"), tmp_path / "data.bin", sha256(PAYLOAD), progress=False)
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD


def test_a_checksum_mismatch_is_an_error_that_keeps_the_file(server, tmp_path):
    wrong = sha256(b"something else")
    with pytest.raises(UserError, match=r"data.bin.part: sha256 is [0-9a-f]{64}, expected [0-9a-f]{64}; the file is kept"):
        download(server.url("data.bin"), tmp_path / "data.bin", wrong, progress=False)
    assert (tmp_path / "data.bin.part").read_bytes() == PAYLOAD and not (tmp_path / "data.bin").exists()
    with pytest.raises(UserError, match="the file is kept"):  # again: nothing more to fetch (416), same verdict
        download(server.url("data.bin"), tmp_path / "data.bin", wrong, progress=False)
    assert server.requests == [None, f"bytes={len(PAYLOAD)}-"]


def test_a_connection_that_keeps_failing_stops_with_the_part_kept(server, tmp_path):
    server.cut = [1000] * 3
    with pytest.raises(UserError, match=r"stopped at 3000 bytes .* run again to resume"):
        download(server.url("data.bin"), tmp_path / "data.bin", None, retries=2, progress=False)
    assert (tmp_path / "data.bin.part").read_bytes() == PAYLOAD[:3000]
    download(server.url("data.bin"), tmp_path / "data.bin", None, progress=False)
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD


def test_http_errors_and_bad_checksums_are_one_line_errors(server, tmp_path):
    with pytest.raises(UserError, match="HTTP 404"):
        download(server.url("missing.zip"), tmp_path / "missing.zip", None, progress=False)
    for bad in ("sha1:abc", "md5:xyz", "sha256:" + "0" * 32, "12345"):
        with pytest.raises(UserError, match="is not md5:HEX"):
            parse_checksum(bad)
    assert parse_checksum("0" * 32) == ("md5", "0" * 32) and parse_checksum("SHA256:" + "A" * 64)[0] == "sha256"


def test_a_file_url(tmp_path):
    (tmp_path / "src.bin").write_bytes(PAYLOAD)
    download((tmp_path / "src.bin").as_uri(), tmp_path / "copy.bin", sha256(PAYLOAD), progress=False)
    assert (tmp_path / "copy.bin").read_bytes() == PAYLOAD


def vctk_zip() -> bytes:
    """VCTK 0.92's archive layout (top-level folders, as the official zip), 2 speakers × 2 utterances."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("speaker-info.txt", "ID  AGE  GENDER  ACCENTS  REGION COMMENTS \np225  23  F  English  Southern\n"
                                        "p226  22  M  English  Surrey\n")
        for speaker in ("p225", "p226"):
            for n, text in enumerate(["Please call Stella.", "Ask her to bring these things."], 1):
                audio = io.BytesIO()
                sf.write(audio, 0.3 * np.sin(np.arange(9600) / 10).astype(np.float32), 48000, format="FLAC")
                zf.writestr(f"wav48_silence_trimmed/{speaker}/{speaker}_{n:03d}_mic1.flac", audio.getvalue())
                zf.writestr(f"txt/{speaker}/{speaker}_{n:03d}.txt", text + "\n")
    return buffer.getvalue()


def test_prepare_vctk_download_fetches_unpacks_and_then_reuses(server, tmp_path):
    archive = server.files["VCTK-Corpus-0.92.zip"] = vctk_zip()
    kw = {"download_corpus": True, "url": server.url("VCTK-Corpus-0.92.zip"), "checksum": sha256(archive),
          "policy": SplitPolicy(0, 1), "workers": 1, "progress": False}
    result = prepare_vctk(tmp_path / "raw", tmp_path / "out", **kw)
    assert (result.name, result.speakers, result.utterances) == ("VCTK 0.92 (mic1)", 2, 4)
    assert (tmp_path / "raw" / "VCTK-Corpus-0.92.zip").read_bytes() == archive
    assert (tmp_path / "raw" / "txt" / "p225" / "p225_001.txt").is_file()
    again = prepare_vctk(tmp_path / "raw", tmp_path / "out", **kw)
    assert (again.made, again.reused) == (0, 4) and len(server.requests) == 1  # nothing fetched or unpacked again


def test_a_broken_zip_is_a_user_error(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"PK but not really")
    with pytest.raises(UserError, match="not a usable zip file"):
        extract_zip(tmp_path / "x.zip", tmp_path / "x", progress=False)
