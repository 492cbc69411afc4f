"""A SIGKILLed ``syncer normalize`` leaves no process behind (issue 16, item 10).

Nothing runs in a process killed with SIGKILL, so its pool processes and the
attachment-text child used to survive, reparented to init and blocked on a
pipe. This starts a real ``syncer normalize`` with a pool over a backlog whose
PDFs keep the attachment child busy, kills the parent once both workers and the
extractor run, and checks every descendant is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from syncer.archive.store import ArchiveStore
from syncer.model import RemoteMessage
from syncer.sync.normalize import POOL_THRESHOLD
from tests.unit.test_attachment_text import slow_pdf


def _with_pdf(n: int, pdf: bytes) -> bytes:
    import base64

    body = base64.encodebytes(pdf).replace(b"\n", b"\r\n")
    return (
        b"From: a@example.com\r\nSubject: slow %d\r\nMessage-ID: <slow%d@x>\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="a.pdf"\r\n\r\n' % (n, n) + body + b"--b--\r\n"
    )


def _children() -> dict[int, int]:
    """pid -> parent pid, for every process now."""
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        found[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return found


def _descendants(root: int) -> set[int]:
    parents = _children()
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigkill_of_normalize_leaves_no_child(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    store = ArchiveStore.open(url, migrate=True)
    store.ensure_account("work", "imap")
    pdf = slow_pdf(2_000_000)
    raws = [_with_pdf(n, pdf) for n in range(POOL_THRESHOLD + 40)]
    batch = [RemoteMessage(folder="INBOX", uid=i + 1, raw=raw) for i, raw in enumerate(raws)]
    store.archive_batch("work", "INBOX", 1, batch, None)
    store.close()
    config = tmp_path / "syncer.toml"
    config.write_text(f'[archive]\nurl = "{url}"\n', encoding="utf-8")
    with open(tmp_path / "log", "wb") as log:
        parent = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "syncer",
                "--config",
                str(config),
                "normalize",
                "--workers",
                "2",
            ],
            stdout=log,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 120
        seen: set[int] = set()
        # Wait for the two pool processes and the attachment-text child they share.
        while time.monotonic() < deadline:
            seen |= _descendants(parent.pid)
            lines = [_cmdline(pid) for pid in seen if _alive(pid)]
            workers = sum("normalize_work" in line for line in lines)
            if workers >= 2 and any("syncer.mime.attachments" in line for line in lines):
                break
            assert parent.poll() is None, (tmp_path / "log").read_text()
            time.sleep(0.2)
        else:
            raise AssertionError("the pool and its attachment child never started")
        seen |= _descendants(parent.pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(pid) for pid in seen):
            time.sleep(0.2)
        assert [pid for pid in seen if _alive(pid)] == []
    finally:
        if parent.poll() is None:
            parent.kill()
        for pid in _descendants(parent.pid) | seen:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
