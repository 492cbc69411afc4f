"""The one progress component: its numbers, and what each display writes."""

from __future__ import annotations

import io
import json
import time

from structlog.testing import capture_logs

from syncer.progress import ProgressReporter, choose_mode, render_numbers


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_totals_from_the_plan_give_rate_and_eta_by_bytes() -> None:
    clock = Clock()
    reporter = ProgressReporter("Syncing", mode="off", clock=clock)
    with reporter:
        reporter.planned(10, 1000)
        reporter.planned(30, 3000)
        reporter.folder_started("INBOX", 10, 0)  # a plan exists: its count is not added again
        clock.now += 10
        reporter.advanced(10, 1000)
        snap = reporter.snapshot()
    assert (snap.messages, snap.messages_total, snap.bytes, snap.bytes_total) == (
        10,
        40,
        1000,
        4000,
    )
    assert snap.folder == "INBOX"
    assert snap.messages_per_second == 1.0 and snap.bytes_per_second == 100.0
    assert snap.eta_seconds == 30.0
    assert render_numbers(snap) == "10/40 msgs · 0.0/0.0 MB · 1 msgs/s · ETA 0:30 · INBOX"


def test_an_unknown_size_leaves_the_byte_total_open_and_the_eta_counts_messages() -> None:
    clock = Clock()
    reporter = ProgressReporter("Syncing", mode="off", clock=clock)
    reporter.planned(10, 1000)
    reporter.planned(10, None)
    clock.now += 5
    reporter.advanced(5, 500)
    snap = reporter.snapshot()
    assert snap.bytes_total is None and snap.messages_total == 20
    assert snap.eta_seconds == 15.0


def test_off_a_terminal_a_progress_event_per_interval_and_a_last_one() -> None:
    reporter = ProgressReporter("Normalizing", mode="log", interval=0.05)
    with capture_logs() as logs, reporter:
        reporter(3, 9)
        time.sleep(0.3)
    events = [e for e in logs if e["event"] == "progress"]
    assert len(events) >= 3
    assert events[-1]["messages"] == 3 and events[-1]["messages_total"] == 9
    assert {"eta_seconds", "messages_per_second", "bytes_per_second"} <= set(events[-1])


def test_json_mode_writes_json_lines_and_a_short_run_writes_nothing() -> None:
    out = io.StringIO()
    with ProgressReporter("Exporting", mode="json", interval=0.05, stream=out) as reporter:
        reporter.advanced(2, 10)
        time.sleep(0.2)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines and lines[-1]["event"] == "progress" and lines[-1]["messages"] == 2
    quiet = io.StringIO()
    with ProgressReporter("Exporting", mode="json", interval=10, stream=quiet) as reporter:
        reporter.advanced(2, 10)
    assert quiet.getvalue() == ""


def test_the_mode_follows_quiet_json_and_the_terminal() -> None:
    assert choose_mode(json_output=True, quiet=True) == "off"
    assert choose_mode(json_output=True, quiet=False) == "json"
    assert choose_mode(json_output=False, quiet=False, stream=io.StringIO()) == "log"
