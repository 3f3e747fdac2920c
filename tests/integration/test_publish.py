"""The published site in a real browser: headless Chromium (Debian's `chromium`, installed by
`make test` when missing) loads the index, a decision page and the feed from file:// URLs;
the test reads the DOM Chromium rendered (`--dump-dom`, not the files' source), finds the
outcome, the rationale and the record head, checks the console stayed clean (no script
errors, no Content-Security-Policy violation) and saves a screenshot of a decision page."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import pytest

from bot.domain.publish import PublishOptions
from bot.services.publish import write_site
from tests.unit.test_publish import _decided_world, _site

pytestmark = pytest.mark.real

# Chromium's own noise on a machine without D-Bus or a GPU is not the page's.
_CONSOLE = re.compile(r"CONSOLE|Uncaught|Refused|Content Security Policy", re.IGNORECASE)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("no Chromium found: `make test` installs Debian's chromium (make browser)")


def _browse(url: str, *extra: str) -> tuple[str, list[str]]:
    """(rendered DOM, console lines) of one page load in headless Chromium."""
    done = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",  # the tests may run as root in a container
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    console = [line for line in done.stderr.splitlines() if _CONSOLE.search(line)]
    return done.stdout, console


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site published from a database with decided, declined, appealed and open requests."""
    where = tmp_path_factory.mktemp("publish")

    async def build() -> dict[str, str]:
        w = await _decided_world(where / "bot.db")
        try:
            # The group chose to publish its records: the page links them, the DOM shows heads.
            return await _site(w, PublishOptions(record_files=True))
        finally:
            await w.db.close()

    out = where / "site"
    write_site(asyncio.run(build()), out)
    return out


def test_publish_decision_page_in_a_real_browser(site: Path, tmp_path: Path) -> None:
    page = site / "decisions/1/index.html"
    dom, console = _browse(page.as_uri(), "--dump-dom")
    assert console == []
    text = unescape(re.sub(r"<[^>]+>", " ", dom))
    assert re.search(r'id="outcome"[^>]*>Admitted<', dom)
    # The hostile rationale is shown as text, never run or parsed as markup.
    assert "</blockquote><script>alert('rationale')</script> Admitted by charter." in text
    assert "<script" not in dom
    record = json.loads((site / "decisions/1/request-1-record-1.json").read_text("utf-8"))
    assert record["head"] in text
    assert f"--head {record['head']}" in text

    shot = tmp_path / "decision-page.png"
    _, console = _browse(page.as_uri(), f"--screenshot={shot}", "--window-size=1000,2200")
    assert console == []
    assert shot.stat().st_size > 10_000
    print(f"screenshot of a decision page: {shot}")


def test_publish_index_and_feed_in_a_real_browser(site: Path) -> None:
    dom, console = _browse((site / "index.html").as_uri(), "--dump-dom")
    assert console == []
    assert "Request 1" in dom
    assert "Request 2" in dom
    assert "Request 3" not in dom  # open: not published
    assert dom.count("<svg") == 3  # the charts, drawn at build time
    feed, console = _browse((site / "feed.atom").as_uri(), "--dump-dom")
    assert console == []
    assert "Request 2: Declined" in feed
    assert "Request 1: Admitted" in feed
