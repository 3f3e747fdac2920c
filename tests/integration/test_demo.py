"""`consensus-bot demo` runs its whole scenario non-interactively and leaves nothing running.

It runs through the real command line (`python -m bot demo --workdir …`) in a subprocess, so
the test also proves the CLI path, the demo's own Synapse and the in-process bot.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.real

DEMO_TIMEOUT_S = 150


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention `text` (Linux /proc; [] elsewhere)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def test_demo_walks_one_request_to_its_outcome(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "bot", "demo", "--workdir", str(workdir)],
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=DEMO_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            env=env,
            check=False,
        )
    finally:
        leftovers = _processes_mentioning(str(workdir))
    out = result.stdout
    report = f"exit {result.returncode}\n--- stdout ---\n{out}\n--- stderr ---\n{result.stderr}"
    bot_log = workdir / "bot" / "bot.log"
    if result.returncode != 0 and bot_log.exists():
        report += f"\n--- bot log ---\n{bot_log.read_text(errors='replace')[-4000:]}"

    assert result.returncode == 0, report
    assert out.startswith("Consensus Bot demo"), report
    assert "Starting a throwaway homeserver on 127.0.0.1:" in out, report
    # Every step of the story, in order.
    steps = [
        "chair files a participation request for Erin Example",
        "bot files it as request #1",
        "bot posts the request card and the ballot",
        "reacts 👍 support",
        "reacts 👌 no objection",
        "!cb concern",
        "bot asks ivan for a reason",
        "!cb object",
        "!cb objections",
        "!cb dispose 1 addressed",
        "Objection #1 by @ivan:localhost: addressed.",
        "waiting for the deadline",
        "Draft sense of the room",
        "Proposed: rough consensus to admit",
        "!cb confirm",
        "the applicant is admitted",
        "erin joins the roster and is invited to the main room",
        "bot publishes the decision on the public site",
        "Summary",
    ]
    positions = [out.find(step) for step in steps]
    missing = [step for step, at in zip(steps, positions, strict=True) if at < 0]
    assert not missing, f"missing steps {missing}\n{report}"
    assert positions == sorted(positions), report
    # The summary: the confirmed outcome, the objection's disposition, who is in the rough.
    summary = out[out.index("Summary") :]
    assert "Outcome:       admit" in summary, report
    assert "#1 by ivan: addressed" in summary, report
    assert "In the rough:  ivan" in summary, report
    # The demo ends by printing the page the bot published for its decision.
    page = Path(summary.split("Published:", 1)[1].split()[0])
    assert page == tmp_path / "demo-site" / "decisions" / "1" / "index.html", report
    assert 'id="outcome">Admitted<' in page.read_text(encoding="utf-8"), report
    assert "nothing is left running" in out, report
    # Non-interactive output: no terminal control sequences, nothing on stderr.
    assert "\r" not in out, report
    assert "\x1b" not in out, report
    assert result.stderr.strip() == "", report
    # Nothing left running: no Synapse (or anything else) using the demo's directory.
    assert leftovers == [], leftovers


def test_language_demo_runs_in_french(tmp_path: Path) -> None:
    """`make demo DEMO_LANGUAGE=fr`: the same story, the bot speaking French in the rooms."""
    workdir = tmp_path / "demo-fr"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--workdir", str(workdir), "--language", "fr"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=DEMO_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
        env=env,
        check=False,
    )
    report = f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, report
    assert "🗳 Scrutin pour" in result.stdout, report
    assert "Projet de sentiment de l'assemblée" in result.stdout, report
    assert "le candidat est admis" in result.stdout, report
