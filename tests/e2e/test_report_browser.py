"""The run report in a real headless Chromium: the rendered DOM has its sections and charts, and a
screenshot of the page is not blank. Skips when Chromium is absent (CI installs the `chromium` package)."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from segflow_local.report import build_report
from segflow_local.report.sample import write_sample_run

SECTION_IDS = ("summary", "segments", "rfm", "clusters", "value", "funnel", "quality", "sync")
WIDTH, HEIGHT = 1280, 4000
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium not installed (Debian package `chromium`, /usr/bin/chromium)"
)


def chromium(profile_dir: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile_dir}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, timeout=120, check=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    write_sample_run(out, customers=400, seed=3)
    return build_report(out, run_summary={"seconds": 42.0})


class RenderedDom(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.charts = 0
        self.figcaptions = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "svg" and a.get("role") == "img" and a.get("aria-label"):
            self.charts += 1
        if tag == "figcaption":
            self.figcaptions += 1


def test_rendered_dom_has_every_section_and_chart(report: Path, tmp_path: Path) -> None:
    dom = chromium(tmp_path / "profile", "--dump-dom", report.as_uri()).stdout.decode("utf-8")
    rendered, source = RenderedDom(dom), RenderedDom(report.read_text(encoding="utf-8"))
    assert set(SECTION_IDS) <= rendered.ids
    assert rendered.charts == source.charts == 11
    assert rendered.figcaptions == rendered.charts
    assert "Not available yet" not in dom


def png_size_and_pixels(png: bytes) -> tuple[int, int, bytes]:
    """Width, height and the (still filtered) pixel rows of a PNG, read with zlib alone."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, size, data = 8, (0, 0), b""
    while pos < len(png):
        (length,), kind = struct.unpack(">I", png[pos : pos + 4]), png[pos + 4 : pos + 8]
        body = png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            data += body
        pos += 12 + length
    return size[0], size[1], zlib.decompress(data)


def test_screenshot_is_not_blank(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    chromium(tmp_path / "profile", f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", report.as_uri())
    width, height, pixels = png_size_and_pixels(shot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    # A blank white page filters down to a handful of byte values (about 4) that are nearly all 0 or 255;
    # text, bars and the heat map give every byte value and a few percent of other bytes.
    assert len(set(pixels)) > 64
    varied = len(pixels) - pixels.count(0) - pixels.count(255)
    assert varied / len(pixels) > 0.005
