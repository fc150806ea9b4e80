"""Open an HTML page in headless Chromium: screenshot, rendered DOM, image and
console checks. Pure standard library; without Chromium a check fails (it never skips)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--disable-dev-shm-usage")
RESULT_ID = "__browser_check__"

#: Runs before anything else on the page: records console errors, uncaught
#: errors and failed resource loads, then writes them and the state of every
#: <img> into a <pre> the dumped DOM carries.
PROBE = """<script>(function () {
  var errors = [];
  var original = console.error;
  console.error = function () { errors.push('console.error: ' + Array.prototype.join.call(arguments, ' '));
                                return original.apply(console, arguments); };
  window.addEventListener('error', function (e) {
    var t = e.target || {};
    errors.push(t.tagName ? ('failed to load ' + t.tagName + ' ' + String(t.src || t.href).slice(0, 80))
                          : ('uncaught: ' + e.message));
  }, true);
  window.addEventListener('unhandledrejection', function (e) { errors.push('unhandled rejection: ' + e.reason); });
  window.addEventListener('load', function () {
    var images = Array.prototype.map.call(document.images, function (img) {
      return {alt: img.alt, complete: img.complete, naturalWidth: img.naturalWidth,
              naturalHeight: img.naturalHeight, external: !/^data:/.test(img.getAttribute('src') || '')};
    });
    var out = document.createElement('pre');
    out.id = '%s';
    out.textContent = JSON.stringify({images: images, errors: errors});
    document.body.appendChild(out);
  });
})();</script>""" % RESULT_ID


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable, or None."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageCheck:
    """What the browser saw."""

    dom: str
    images: list[dict]
    errors: list[str]
    console: list[str] = field(default_factory=list)
    screenshot: Path | None = None

    @property
    def broken_images(self) -> list[dict]:
        """Images that did not load (or have no pixels)."""
        return [i for i in self.images if not i["complete"] or i["naturalWidth"] <= 0]


def _run(binary: str, args: list[str], profile: Path, timeout: float) -> subprocess.CompletedProcess:
    command = [binary, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def check_page(page: Path, screenshot: Path | None = None, width: int = 1280, height: int = 2400,
               timeout: float = 120.0) -> PageCheck:
    """Load ``page`` in headless Chromium and report images, errors and console output.

    A copy of the page with :data:`PROBE` injected is loaded with ``--dump-dom``;
    the original page is screenshotted (the probe never touches it).

    Parameters
    ----------
    page : Path
        HTML file.
    screenshot : Path, optional
        Where to save a PNG screenshot of the original page.
    width, height : int
        Window size of the screenshot.
    timeout : float
        Seconds per browser call.
    """
    binary = find_chromium()
    if binary is None:
        raise RuntimeError(f"no Chromium on PATH (looked for {', '.join(CANDIDATES)}): install Debian's "
                           "chromium (.ci/run does so as root), or run `make test-fast`, which leaves browser "
                           "tests out")
    page = Path(page).resolve()
    with tempfile.TemporaryDirectory(prefix="trdnet-browser-") as tmp:
        tmp = Path(tmp)
        probe_page = page.with_name(f".probe-{page.name}")
        text = page.read_text(encoding="utf-8")
        head = re.search(r"<head[^>]*>", text, flags=re.IGNORECASE)
        at = head.end() if head else 0
        probe_page.write_text(text[:at] + PROBE + text[at:], encoding="utf-8")
        try:
            done = _run(binary, ["--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
                                 "--dump-dom", probe_page.as_uri()], tmp / "profile-dom", timeout)
        finally:
            probe_page.unlink(missing_ok=True)
        console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
        if screenshot is not None:
            screenshot = Path(screenshot).resolve()
            _run(binary, [f"--screenshot={screenshot}", f"--window-size={width},{height}", page.as_uri()],
                 tmp / "profile-shot", timeout)
    found = re.search(rf'<pre id="{RESULT_ID}">(.*?)</pre>', done.stdout, flags=re.DOTALL)
    if not found:
        raise RuntimeError(f"the page did not finish loading in chromium (exit {done.returncode}): "
                           f"{done.stderr[-500:]}")
    result = json.loads(_unescape(found.group(1)))
    dom = done.stdout.replace(found.group(0), "")
    return PageCheck(dom=dom, images=result["images"], errors=result["errors"], console=console,
                     screenshot=screenshot if screenshot is not None and screenshot.is_file() else None)


def _unescape(text: str) -> str:
    import html

    return html.unescape(text)


class _Numbers(HTMLParser):
    """Collect every element carrying ``data-name`` with its attributes and text."""

    def __init__(self):
        super().__init__()
        self.items: list[dict] = []
        self._open: list[dict | None] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        item = {"tag": tag, **attrs, "text": ""} if "data-name" in attrs else None
        if item is not None:
            self.items.append(item)
        if tag not in ("img", "br", "meta", "link", "input", "hr"):
            self._open.append(item)

    def handle_endtag(self, tag):
        if self._open:
            self._open.pop()

    def handle_data(self, data):
        for item in self._open:
            if item is not None:
                item["text"] += data


def tagged_values(dom: str) -> list[dict]:
    """Every ``data-name`` element of a page: its attributes plus its text."""
    parser = _Numbers()
    parser.feed(dom)
    return parser.items
