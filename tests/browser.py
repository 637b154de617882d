"""A report page opened in headless Chromium (Debian's chromium and chromium-driver, through Selenium):
what each player and image loaded, and what the console said."""

from __future__ import annotations

import base64
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVER = "chromedriver"

# Waits for every <audio> to load its metadata (or fail), then reports players and images.
_PROBE = """
const done = arguments[arguments.length - 1];
const players = [...document.querySelectorAll('audio')];
Promise.all(players.map(a => new Promise(resolve => {
  a.addEventListener('loadedmetadata', resolve, {once: true});
  a.addEventListener('error', resolve, {once: true});
  a.load();
}))).then(() => done({
  players: players.map(a => ({src: a.currentSrc, ready: a.readyState, error: a.error ? a.error.code : null,
                              duration: a.duration})),
  images: [...document.images].map(i => ({src: i.currentSrc, loaded: i.complete && i.naturalWidth > 0})),
}));
"""


@dataclass
class PageCheck:
    players: list[dict]      # src, ready (HTMLMediaElement.readyState), error code, duration (s)
    images: list[dict]       # src, loaded
    console_errors: list[str]

    @property
    def broken(self) -> list[str]:
        """Every player whose source did not load, every image that did not, and every console error."""
        return ([f"player {p['src']}: error {p['error']}, readyState {p['ready']}" for p in self.players
                 if p["error"] is not None or p["ready"] < 1]
                + [f"image {i['src']}" for i in self.images if not i["loaded"]] + self.console_errors)


def chromium_missing() -> str | None:
    """Why the browser cannot run here (None: it can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the dev extra)"
    if not any(shutil.which(name) for name in CHROMIUM) or not shutil.which(DRIVER):
        return "chromium and chromium-driver are not installed (tools/setup.sh installs them as root)"
    return None


@contextmanager
def chromium(width: int = 1280, height: int = 900):
    """A headless Chromium driven by Debian's chromedriver; nothing is downloaded."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = next(shutil.which(n) for n in CHROMIUM if shutil.which(n))
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--mute-audio", f"--window-size={width},{height}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=shutil.which(DRIVER)))
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def check_page(driver, page: Path, screenshot: Path | None = None) -> PageCheck:
    """Open ``page`` (a file), wait for its players, and list what loaded; with ``screenshot``, save the whole
    page as PNG there."""
    driver.get(Path(page).resolve().as_uri())
    result = driver.execute_async_script(_PROBE)
    errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    if screenshot is not None:
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
        Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
    return PageCheck(players=result["players"], images=result["images"], console_errors=errors)
