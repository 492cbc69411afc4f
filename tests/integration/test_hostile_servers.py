"""`syncer sync` against hostile IMAP and POP3 servers: memory and time stay bounded.

These tests use small scripted fake servers on loopback (tests/servers/scripted.py)
because no real server behaves this way: Dovecot never trickles its greeting, floods
VANISHED, sends bodies nobody asked for or an endless line. Each runs the real
``syncer`` CLI as a subprocess and checks, per case:

* its peak RSS (``wait4`` on that process) stays within ``batch_bytes`` + 64 MB
  whatever the server sends (hundreds of MB in the flooding cases);
* a failure is one clear line, ``exit 1``, within GRACE x ``timeout`` plus the
  transfer time (the run's own duration from the JSON summary, so interpreter
  start-up does not count; a few seconds of slack for a loaded machine -- this is
  a deadline, not a performance figure);
* where syncer can recover (unsolicited bodies are dropped, a VANISHED flood
  falls back to the full listing, MODSEQ going backwards, UIDVALIDITY changing)
  the run succeeds with a warning instead, which is the point of recovering;
* afterwards ``syncer verify`` finds no problem, and ``syncer check`` (which needs
  a server that answers: the fake is told to behave first) counts exactly what
  the archive holds, calls the rest missing, and nothing stale.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from syncer.archive.store import ArchiveStore
from syncer.cli.app import main
from syncer.sources.deadline import GRACE, MIN_RATE
from tests.servers.scripted import (
    Conn,
    FakeIMAP,
    FakePOP3,
    Folder,
    Measured,
    ScriptedServer,
    message,
    run_measured,
)

pytestmark = pytest.mark.integration

TIMEOUT = 1.0
BATCH_BYTES = 16 * 1024 * 1024
RSS_LIMIT = BATCH_BYTES + 64 * 1024 * 1024
#: Room for a loaded 2-core machine on top of the deadline itself.
SLACK = 4.0
#: How long a hung run may go on before the test kills it (today's main hangs for ever).
HANG = 30.0
MB = 1024 * 1024


class Syncer:
    """The CLI with a config for one account at the fake server's port.

    ``sync`` runs as a subprocess (its memory and time are what is measured);
    ``init``, ``verify`` and ``check`` run in-process through click's runner, which
    keeps each case to a few seconds.
    """

    def __init__(self, tmp: Path, port: int, protocol: str = "imap") -> None:
        self.tmp = tmp
        self.config = tmp / "syncer.toml"
        self.config.write_text(
            f'[archive]\nurl = "sqlite:///{tmp}/archive.db"\n\n[[accounts]]\n'
            f'name = "evil"\nprotocol = "{protocol}"\nhost = "127.0.0.1"\nport = {port}\n'
            'security = "plain"\nallow_insecure = true\nusername = "me"\n'
            f'password_env = "EVIL_PW"\ntimeout = {TIMEOUT}\nretries = 0\n'
            f"batch_bytes = {BATCH_BYTES}\n"
        )
        self.env = {**os.environ, "EVIL_PW": "pw"}
        assert self.cli("init").exit_code == 0

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(main, ["--config", str(self.config), *args], env=self.env)

    def sync(self) -> tuple[Measured, dict[str, Any]]:
        argv = [sys.executable, "-m", "syncer", "--config", str(self.config)]
        run = run_measured([*argv, "sync", "--json", "--no-normalize"], self.env, self.tmp, HANG)
        assert run.peak_rss <= RSS_LIMIT, f"peak RSS {run.peak_rss / MB:.0f} MB"
        assert run.returncode in (0, 1), (run.returncode, run.stderr[-2000:])
        (summary,) = json.loads(run.stdout)
        return run, summary


def assert_fails_clearly(
    run: Measured, summary: dict[str, Any], wording: str, transfer: int = 0
) -> None:
    """Exit 1, one line naming the problem, within the deadline of the answer."""
    assert run.returncode == 1
    error = summary["error"]
    assert summary["ok"] is False and "\n" not in error
    assert wording in error, error
    assert summary["seconds"] <= GRACE * TIMEOUT + transfer / MIN_RATE + SLACK, summary


def assert_consistent_after(cli: Syncer, fake: Any) -> None:
    """Nothing half-written: verify is clean, and check (against the fake, behaving now)
    counts exactly what the archive holds and calls every other message missing."""
    verify = cli.cli("verify")
    assert verify.exit_code == 0 and " 0 problems" in verify.stdout, verify.stdout
    fake.hostile = False
    check = cli.cli("check", "--json")
    report = json.loads(check.stdout)[0]
    with ArchiveStore.open(f"sqlite:///{cli.tmp}/archive.db") as store:
        for folder in report["folders"]:
            live = store.live_uids("evil", folder["folder"], folder["uidvalidity"])
            assert folder["archive"] == len(live), folder
            assert folder["missing"] == folder["server"] - len(live), folder
            assert folder["stale"] == 0, folder
    assert check.exit_code == (0 if report["complete"] else 1)


def inbox(count: int = 5, size: int = 2000) -> dict[bytes, Folder]:
    return {b"INBOX": Folder(messages={i: message(i, size) for i in range(1, count + 1)})}


class Hostile(FakeIMAP):
    """A fake whose misbehaviour can be switched off (for the check afterwards)."""

    hostile = True

    @staticmethod
    def body_fetch(items: bytes) -> bool:
        return b"BODY.PEEK[]" in items.upper()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    servers: list[ScriptedServer] = []

    def start(fake: Any, protocol: str = "imap") -> Syncer:
        server = ScriptedServer(fake).__enter__()
        servers.append(server)
        return Syncer(tmp_path, server.port, protocol)

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def _stall(conn: Conn) -> None:
    """Say nothing more until the client hangs up."""
    conn.readline()


# -- literals ---------------------------------------------------------------------------------


class HugeLiteral(Hostile):
    """Announces a 1.5 GB literal for a 2 KB message, then streams 200 MB of it."""

    def do_UID_FETCH(self, conn: Conn, tag: bytes, args: bytes) -> None:
        if not (self.hostile and self.body_fetch(args)):
            return super().do_UID_FETCH(conn, tag, args)
        conn.send(b"* 1 FETCH (UID 1 RFC822.SIZE 2000 BODY[] {1500000000}\r\n")
        chunk = b"x" * MB
        for _ in range(200):
            conn.send(chunk)
        _stall(conn)


def test_a_literal_beyond_the_announced_size_is_a_protocol_error(serve: Any) -> None:
    fake = HugeLiteral(inbox())
    cli = serve(fake)
    run, summary = cli.sync()
    assert_fails_clearly(run, summary, "announced a literal of 1,500,000,000 bytes")
    assert_consistent_after(cli, fake)


class ShortLiteral(Hostile):
    """Announces the right size, sends a tenth of it, then says nothing."""

    def do_UID_FETCH(self, conn: Conn, tag: bytes, args: bytes) -> None:
        if not (self.hostile and self.body_fetch(args)):
            return super().do_UID_FETCH(conn, tag, args)
        raw = self.folders[b"INBOX"].messages[1]
        conn.send(b"* 1 FETCH (UID 1 BODY[] {%d}\r\n" % len(raw) + raw[: len(raw) // 10])
        _stall(conn)


def test_a_short_literal_times_out_as_a_transient_error(serve: Any) -> None:
    fake = ShortLiteral(inbox())
    cli = serve(fake)
    run, summary = cli.sync()
    assert_fails_clearly(run, summary, "did not answer within 1 s")
    assert_consistent_after(cli, fake)


# -- floods -----------------------------------------------------------------------------------


class UnsolicitedBodies(Hostile):
    """Sends 300 bodies of 500 KB (150 MB) for UIDs nobody asked for before the real ones."""

    def do_UID_FETCH(self, conn: Conn, tag: bytes, args: bytes) -> None:
        if self.hostile and self.body_fetch(args):
            junk = message(0, 500_000)
            for i in range(300):
                head = b"* 9 FETCH (UID %d BODY[] {%d}\r\n" % (5000 + i, len(junk))
                conn.send(head + junk + b")\r\n")
        super().do_UID_FETCH(conn, tag, args)


def test_unsolicited_bodies_are_dropped_and_logged(serve: Any) -> None:
    fake = UnsolicitedBodies(inbox(size=500_000))
    cli = serve(fake)
    run, summary = cli.sync()
    assert run.returncode == 0 and summary["new"] == 5, summary
    logged = (run.stdout + run.stderr).splitlines()
    (event,) = [json.loads(x) for x in logged if "imap.fetch.unsolicited" in x]
    assert event["count"] == 300 and event["uids"][:2] == [5000, 5001]
    assert_consistent_after(cli, fake)


class VanishedFlood(Hostile):
    """Under QRESYNC, claims UIDNEXT 3,000,001 and that UIDs 1:3000000 vanished (3 lines),
    or (``scattered``) names 150,000 separate UIDs in VANISHED lines."""

    capabilities = b"IMAP4rev1 LITERAL+ UIDPLUS ENABLE CONDSTORE QRESYNC"
    hostile = False  # the first sync builds the cursor QRESYNC needs
    scattered = False

    def examine_answer(self, folder: Folder) -> bytes:
        answer = super().examine_answer(folder)
        if not self.hostile:
            return answer
        lines = [b"* OK [UIDNEXT 3000001] n\r\n"]
        if self.scattered:
            for part in range(3):
                odd = range(1_000_001 + 100_000 * part, 1_100_001 + 100_000 * part, 2)
                lines.append(b"* VANISHED (EARLIER) " + b",".join(b"%d" % u for u in odd) + b"\r\n")
        else:
            for start in (1, 1_000_001, 2_000_001):
                lines.append(b"* VANISHED (EARLIER) %d:%d\r\n" % (start, start + 999_999))
        return answer + b"".join(lines)


def _flood(serve: Any, scattered: bool) -> tuple[Syncer, VanishedFlood, Measured, dict[str, Any]]:
    fake = VanishedFlood(inbox())
    fake.scattered = scattered
    cli = serve(fake)
    first, _ = cli.sync()
    assert first.returncode == 0
    fake.folders[b"INBOX"].highestmodseq += 1
    fake.hostile = True
    run, summary = cli.sync()
    assert run.returncode == 0, summary
    return cli, fake, run, summary


def test_vanished_ranges_are_never_expanded(serve: Any) -> None:
    """3 million vanished UIDs cost three ranges. The server lies (UIDs 1-5 still exist):
    out of scope by design -- the entries are marked gone, the bodies stay archived."""
    cli, fake, _run, summary = _flood(serve, scattered=False)
    assert summary["folders"][0]["expunged"] == 5
    verify = cli.cli("verify")
    assert "5 blobs checked, 0 problems" in verify.stdout, "the bodies stay in the archive"
    assert_consistent_after(cli, fake)


def test_a_vanished_flood_of_ranges_is_distrusted(serve: Any) -> None:
    """150,000 separate ranges pass the cap: the delta is distrusted, the full listing
    (UID SEARCH) finds that nothing vanished."""
    cli, fake, run, summary = _flood(serve, scattered=True)
    assert "imap.qresync.distrusted" in run.stdout + run.stderr
    assert summary["folders"][0]["expunged"] == 0
    assert b"UID SEARCH" in fake.commands
    assert_consistent_after(cli, fake)


# -- time -------------------------------------------------------------------------------------


class TricklingGreeting(Hostile):
    """Sends its greeting one byte every 0.3 s (each read succeeds well within the timeout)."""

    def greeting(self, conn: Conn) -> None:
        if not self.hostile:
            return super().greeting(conn)
        conn.trickle(b"* OK [CAPABILITY IMAP4rev1] " + b"." * 200 + b"\r\n", 0.3)


def test_a_trickling_greeting_fails_within_the_deadline(serve: Any) -> None:
    fake = TricklingGreeting(inbox())
    cli = serve(fake)
    run, summary = cli.sync()
    assert_fails_clearly(run, summary, "is too slow")
    assert "the greeting" in summary["error"]
    assert_consistent_after(cli, fake)


class TricklingLiteral(Hostile):
    """Sends a body literal one byte every 0.3 s."""

    def do_UID_FETCH(self, conn: Conn, tag: bytes, args: bytes) -> None:
        if not (self.hostile and self.body_fetch(args)):
            return super().do_UID_FETCH(conn, tag, args)
        raw = self.folders[b"INBOX"].messages[1]
        conn.send(b"* 1 FETCH (UID 1 BODY[] {%d}\r\n" % len(raw))
        conn.trickle(raw, 0.3)


def test_a_trickling_fetch_fails_within_the_deadline_and_is_transient(serve: Any) -> None:
    fake = TricklingLiteral(inbox())
    cli = serve(fake)
    run, summary = cli.sync()
    total = sum(len(m) for m in fake.folders[b"INBOX"].messages.values())
    assert_fails_clearly(run, summary, "is too slow", transfer=total)
    assert "UID FETCH" in summary["error"]
    assert_consistent_after(cli, fake)


class Stalled(Hostile):
    """Never answers EXAMINE."""

    def do_EXAMINE(self, conn: Conn, tag: bytes, args: bytes) -> None:
        if not self.hostile:
            return super().do_EXAMINE(conn, tag, args)
        _stall(conn)


def test_a_stalled_server_fails_within_the_timeout(serve: Any) -> None:
    fake = Stalled(inbox())
    cli = serve(fake)
    run, summary = cli.sync()
    assert_fails_clearly(run, summary, "did not answer within 1 s")
    assert_consistent_after(cli, fake)


class EndlessLine(Hostile):
    """Answers LIST with a 3 MB line that never ends."""

    def do_LIST(self, conn: Conn, tag: bytes, args: bytes) -> None:
        if not self.hostile:
            return super().do_LIST(conn, tag, args)
        conn.send(b'* LIST () "/" ' + b"x" * (3 * MB))
        _stall(conn)


def test_an_endless_line_is_named_as_such(serve: Any) -> None:
    fake = EndlessLine(inbox())
    cli = serve(fake)
    run, summary = cli.sync()
    assert_fails_clearly(run, summary, "the server sent an over-long line")
    assert "refused a command" not in summary["error"]
    assert_consistent_after(cli, fake)


# -- contradictions ---------------------------------------------------------------------------


class DuplicateUID(Hostile):
    """Answers the body FETCH with two different bodies for UID 1."""

    def do_UID_FETCH(self, conn: Conn, tag: bytes, args: bytes) -> None:
        if self.hostile and self.body_fetch(args):
            forged = message(99, len(self.folders[b"INBOX"].messages[1]))
            conn.send(b"* 1 FETCH (UID 1 BODY[] {%d}\r\n" % len(forged) + forged + b")\r\n")
        super().do_UID_FETCH(conn, tag, args)


def test_two_bodies_for_one_uid_are_a_protocol_error(serve: Any) -> None:
    fake = DuplicateUID(inbox())
    cli = serve(fake)
    run, summary = cli.sync()
    assert_fails_clearly(run, summary, "two different bodies for UID 1")
    assert_consistent_after(cli, fake)


class FlappingUIDValidity(Hostile):
    """Gives a new UIDVALIDITY on every EXAMINE (STATUS keeps the old one)."""

    def do_EXAMINE(self, conn: Conn, tag: bytes, args: bytes) -> None:
        if self.hostile:
            self.folders[b"INBOX"].uidvalidity += 1
        super().do_EXAMINE(conn, tag, args)


def test_uidvalidity_flapping_closes_old_entries_and_keeps_every_body(serve: Any) -> None:
    fake = FlappingUIDValidity(inbox())
    cli = serve(fake)
    for _ in range(2):
        run, summary = cli.sync()
        assert run.returncode == 0, summary
    assert "folder.uidvalidity_changed" in run.stdout + run.stderr
    verify = cli.cli("verify")
    assert "5 blobs checked, 0 problems" in verify.stdout, "each body stored once"
    assert_consistent_after(cli, fake)


class ModseqBackwards(Hostile):
    capabilities = b"IMAP4rev1 LITERAL+ UIDPLUS ENABLE CONDSTORE QRESYNC"


def test_modseq_going_backwards_falls_back_to_the_full_listing(serve: Any) -> None:
    fake = ModseqBackwards(inbox())
    cli = serve(fake)
    assert cli.sync()[0].returncode == 0
    fake.folders[b"INBOX"].highestmodseq = 3
    run, summary = cli.sync()
    assert run.returncode == 0, summary
    assert "folder.modseq_backwards" in run.stdout + run.stderr
    assert b"UID SEARCH" in fake.commands, "expunges found by the full listing"
    assert_consistent_after(cli, fake)


def test_folder_names_with_nul_dots_and_slashes_stay_names(serve: Any, tmp_path: Path) -> None:
    names = [b"INBOX", b"a\x00b", b"..", b"../../escape", b"/abs", b"x/../../y"]
    fake = Hostile({n: Folder(messages={1: message(i)}) for i, n in enumerate(names)})
    cli = serve(fake)
    before = set(tmp_path.parent.iterdir())
    run, summary = cli.sync()
    assert run.returncode == 0, summary
    assert summary["new"] == len(names)
    assert set(tmp_path.parent.iterdir()) == before, "nothing was created outside the archive"
    assert not (tmp_path / "escape").exists() and not Path("/abs").exists()
    assert_consistent_after(cli, fake)


# -- POP3 -------------------------------------------------------------------------------------


class HostilePOP3(FakePOP3):
    hostile = True


class TricklingRETR(HostilePOP3):
    def do_RETR(self, conn: Conn, arg: bytes) -> None:
        if not self.hostile:
            return super().do_RETR(conn, arg)
        conn.send(b"+OK\r\n")
        conn.trickle(self.messages[int(arg) - 1] + b".\r\n", 0.3)


def test_a_trickling_pop3_retr_fails_within_the_deadline(serve: Any) -> None:
    fake = TricklingRETR([message(i) for i in range(3)])
    cli = serve(fake, "pop3")
    run, summary = cli.sync()
    assert_fails_clearly(run, summary, "is too slow", transfer=len(fake.messages[0]))
    assert "RETR" in summary["error"]
    assert_consistent_after(cli, fake)


class EndlessRETR(HostilePOP3):
    """A RETR answer that goes on for 200 MB without its terminating line."""

    def do_RETR(self, conn: Conn, arg: bytes) -> None:
        if not self.hostile:
            return super().do_RETR(conn, arg)
        conn.send(b"+OK\r\n")
        chunk = b"0123456789abcdef" * 65536
        for _ in range(200):
            conn.send(chunk)
        _stall(conn)


def test_an_endless_pop3_retr_is_a_protocol_error(serve: Any) -> None:
    fake = EndlessRETR([message(i) for i in range(3)])
    cli = serve(fake, "pop3")
    run, summary = cli.sync()
    # The first RETR fails as a protocol error and its session is dropped; the run's
    # error is then the lost session, and the first failure is in the log.
    assert run.returncode == 1 and not summary["ok"] and "\n" not in summary["error"]
    assert "went on past" in run.stdout + run.stderr
    assert summary["seconds"] <= GRACE * TIMEOUT + SLACK
    assert_consistent_after(cli, fake)
