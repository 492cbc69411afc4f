"""Scripted fake IMAP and POP3 servers on loopback, for hostile behaviour no real server shows.

Why: Dovecot never floods VANISHED, trickles its greeting or sends a body for a
UID nobody asked for, yet a hostile or broken server may. :class:`ScriptedServer`
accepts any number of connections and runs a session function on each in a
thread; :class:`FakeIMAP` is a small but complete-enough IMAP4rev1 server
(greeting, LOGIN, LIST, STATUS, EXAMINE, UID FETCH, UID SEARCH, NOOP, LOGOUT)
over an in-memory folder set, whose methods a test overrides to misbehave at
one exact point. :class:`FakePOP3` does the same for POP3. :func:`run_measured`
runs a ``syncer`` command as a subprocess and reports its own peak RSS (from
``wait4``, so earlier children do not count) and wall time.

The real servers (tests/servers/dovecot.py) stay the reference for everything
a real server does; these fakes are only for what one should never do.
"""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self


class Conn:
    """One accepted connection: line reads and (optionally trickled) writes."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.rfile = sock.makefile("rb")

    def readline(self) -> bytes:
        return self.rfile.readline()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def trickle(self, data: bytes, every: float) -> None:
        """Send ``data`` one byte at a time, ``every`` seconds apart."""
        for i in range(len(data)):
            self.sock.sendall(data[i : i + 1])
            time.sleep(every)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.rfile.close()
        self.sock.close()


class ScriptedServer:
    """Listens on a free loopback port; runs ``session(conn)`` for each connection.

    Errors in a session (the client hung up: BrokenPipe, reset) end that session quietly.
    """

    def __init__(self, session: Callable[[Conn], None]) -> None:
        self.session = session
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.connections = 0
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Self:
        self._accept.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self._accept.join(timeout=5)

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._run, args=(Conn(sock),), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, conn: Conn) -> None:
        try:
            self.session(conn)
        except OSError:
            pass  # the client gave up: that is what the hostile tests provoke
        finally:
            conn.close()


# -- IMAP -------------------------------------------------------------------------------------


def message(n: int, size: int = 300) -> bytes:
    """A small valid RFC 5322 message, distinct per ``n``, about ``size`` bytes."""
    head = f"From: a{n}@example.com\r\nMessage-ID: <fake{n}@example.com>\r\nSubject: m{n}\r\n\r\n"
    body = (b"hostile server test " * (size // 20 + 1))[: max(size - len(head), 0)]
    return head.encode() + body + b"\r\n"


@dataclass
class Folder:
    """A folder of the fake: UID -> raw message, with its sync state."""

    uidvalidity: int = 1
    messages: dict[int, bytes] = field(default_factory=dict)
    highestmodseq: int = 10

    @property
    def uidnext(self) -> int:
        return max(self.messages, default=0) + 1


def uid_set(spec: bytes, top: int) -> list[int]:
    """The UIDs a client's set names (``1:3,7``, ``5:*``), up to ``top`` for ``*``."""
    out: list[int] = []
    for part in spec.split(b","):
        lo, _, hi = part.partition(b":")
        a = top if lo == b"*" else int(lo)
        b = a if not hi else (top if hi == b"*" else int(hi))
        out.extend(range(min(a, b), max(a, b) + 1))
    return out


_COMMAND = re.compile(rb"(\S+) (UID \S+|\S+) ?(.*)", re.DOTALL)


class FakeIMAP:
    """A scripted IMAP4rev1 session over ``folders``; override a method to misbehave.

    Capabilities are minimal (no NAMESPACE, LIST-STATUS, CONDSTORE unless
    ``capabilities`` says so), so syncer takes its plainest path. Folder names
    are sent as quoted strings, or as literals when they contain NUL, CR or LF.
    """

    capabilities = b"IMAP4rev1 LITERAL+ UIDPLUS"

    def __init__(self, folders: dict[bytes, Folder] | None = None) -> None:
        self.folders = folders if folders is not None else {b"INBOX": Folder()}
        self.commands: list[bytes] = []
        self.selected: Folder | None = None

    def __call__(self, conn: Conn) -> None:
        self.greeting(conn)
        while True:
            line = conn.readline()
            if not line:
                return
            line = self.read_literals(conn, line)
            m = _COMMAND.match(line.rstrip(b"\r\n"))
            if m is None:
                conn.send(b"* BAD what?\r\n")
                continue
            tag, name, args = m.groups()
            self.commands.append(name.upper())
            handler = getattr(self, "do_" + name.upper().replace(b" ", b"_").decode(), None)
            if handler is None:
                conn.send(tag + b" BAD unknown command\r\n")
            elif handler(conn, tag, args) is False:
                return

    @staticmethod
    def read_literals(conn: Conn, line: bytes) -> bytes:
        """Join LITERAL+ literals (``{n+}``) into the command line."""
        while (m := re.search(rb"\{(\d+)\+?\}\r\n\Z", line)) is not None:
            data = conn.rfile.read(int(m.group(1)))
            line = line[: m.start()] + b'"' + data + b'"' + conn.readline()
        return line

    @staticmethod
    def astring(name: bytes) -> bytes:
        if any(b in name for b in (0, 10, 13)) or b'"' in name or b"\\" in name:
            return b"{%d}\r\n" % len(name) + name
        return b'"' + name + b'"'

    def greeting(self, conn: Conn) -> None:
        conn.send(b"* OK [CAPABILITY " + self.capabilities + b" AUTH=PLAIN] fake ready\r\n")

    def do_CAPABILITY(self, conn: Conn, tag: bytes, args: bytes) -> None:
        conn.send(b"* CAPABILITY " + self.capabilities + b"\r\n" + tag + b" OK done\r\n")

    def do_LOGIN(self, conn: Conn, tag: bytes, args: bytes) -> None:
        conn.send(tag + b" OK [CAPABILITY " + self.capabilities + b"] Logged in\r\n")

    def do_NOOP(self, conn: Conn, tag: bytes, args: bytes) -> None:
        conn.send(tag + b" OK done\r\n")

    def do_LOGOUT(self, conn: Conn, tag: bytes, args: bytes) -> bool:
        conn.send(b"* BYE bye\r\n" + tag + b" OK done\r\n")
        return False

    def do_LIST(self, conn: Conn, tag: bytes, args: bytes) -> None:
        out = [b'* LIST (\\HasNoChildren) "/" ' + self.astring(n) + b"\r\n" for n in self.folders]
        conn.send(b"".join(out) + tag + b" OK done\r\n")

    def folder_named(self, args: bytes) -> tuple[bytes, Folder | None]:
        name = args.split(b'"')[1] if args.startswith(b'"') else args.split(b" ")[0]
        return name, self.folders.get(name)

    def do_STATUS(self, conn: Conn, tag: bytes, args: bytes) -> None:
        name, folder = self.folder_named(args)
        if folder is None:
            conn.send(tag + b" NO [NONEXISTENT] no such folder\r\n")
            return
        modseq = b" HIGHESTMODSEQ %d" % folder.highestmodseq
        conn.send(
            b"* STATUS %s (MESSAGES %d UIDNEXT %d UIDVALIDITY %d%s)\r\n%s OK done\r\n"
            % (
                self.astring(name),
                len(folder.messages),
                folder.uidnext,
                folder.uidvalidity,
                modseq if b"CONDSTORE" in self.capabilities else b"",
                tag,
            )
        )

    def do_EXAMINE(self, conn: Conn, tag: bytes, args: bytes) -> None:
        _name, folder = self.folder_named(args)
        if folder is None:
            conn.send(tag + b" NO [NONEXISTENT] no such folder\r\n")
            return
        self.selected = folder
        conn.send(self.examine_answer(folder) + tag + b" OK [READ-ONLY] done\r\n")

    def examine_answer(self, folder: Folder) -> bytes:
        return (
            b"* %d EXISTS\r\n* OK [UIDVALIDITY %d] v\r\n* OK [UIDNEXT %d] n\r\n"
            b"* OK [HIGHESTMODSEQ %d] m\r\n"
            % (len(folder.messages), folder.uidvalidity, folder.uidnext, folder.highestmodseq)
        )

    def do_UNSELECT(self, conn: Conn, tag: bytes, args: bytes) -> None:
        self.selected = None
        conn.send(tag + b" OK done\r\n")

    do_CLOSE = do_UNSELECT

    def do_ENABLE(self, conn: Conn, tag: bytes, args: bytes) -> None:
        conn.send(b"* ENABLED " + args + b"\r\n" + tag + b" OK done\r\n")

    def do_UID_SEARCH(self, conn: Conn, tag: bytes, args: bytes) -> None:
        assert self.selected is not None
        uids = b" ".join(b"%d" % u for u in sorted(self.selected.messages))
        conn.send(b"* SEARCH " + uids + b"\r\n" + tag + b" OK done\r\n")

    def do_UID_FETCH(self, conn: Conn, tag: bytes, args: bytes) -> None:
        assert self.selected is not None
        spec, _, items = args.partition(b" ")
        folder = self.selected
        wanted = [u for u in uid_set(spec, folder.uidnext - 1) if u in folder.messages]
        if not wanted and folder.messages and spec.endswith(b":*"):
            wanted = [max(folder.messages)]  # "n:*" always names the last message
        for seq, uid in enumerate(sorted(folder.messages), start=1):
            if uid in wanted:
                conn.send(self.fetch_response(seq, uid, folder.messages[uid], items))
        conn.send(tag + b" OK done\r\n")

    def fetch_response(self, seq: int, uid: int, raw: bytes, items: bytes) -> bytes:
        """One ``* seq FETCH (...)`` for what ``items`` asks (UID, FLAGS, sizes, bodies)."""
        parts = [b"UID %d" % uid]
        upper = items.upper()
        if b"FLAGS" in upper:
            parts.append(b"FLAGS (\\Seen)")
        if b"MODSEQ" in upper:
            parts.append(b"MODSEQ (5)")
        if b"INTERNALDATE" in upper:
            parts.append(b'INTERNALDATE "01-Jan-2024 10:00:00 +0000"')
        if b"RFC822.SIZE" in upper:
            parts.append(b"RFC822.SIZE %d" % len(raw))
        if b"BODY.PEEK[HEADER]" in upper:
            header = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
            parts.append(b"BODY[HEADER] {%d}\r\n" % len(header) + header)
        elif b"BODY.PEEK[]" in upper:
            parts.append(b"BODY[] {%d}\r\n" % len(raw) + raw)
        return b"* %d FETCH (" % seq + b" ".join(parts) + b")\r\n"


# -- POP3 -------------------------------------------------------------------------------------


class FakePOP3:
    """A scripted POP3 maildrop (USER/PASS, CAPA, STAT, LIST, UIDL, RETR, QUIT)."""

    def __init__(self, messages: list[bytes]) -> None:
        self.messages = messages

    def __call__(self, conn: Conn) -> None:
        self.greeting(conn)
        while True:
            line = conn.readline()
            if not line:
                return
            name, _, arg = line.strip().partition(b" ")
            handler = getattr(self, "do_" + name.upper().decode(), None)
            if handler is None:
                conn.send(b"-ERR unknown\r\n")
            elif handler(conn, arg) is False:
                return

    def greeting(self, conn: Conn) -> None:
        conn.send(b"+OK fake ready\r\n")

    def do_CAPA(self, conn: Conn, arg: bytes) -> None:
        conn.send(b"+OK\r\nUSER\r\nUIDL\r\nTOP\r\n.\r\n")

    def do_USER(self, conn: Conn, arg: bytes) -> None:
        conn.send(b"+OK\r\n")

    def do_PASS(self, conn: Conn, arg: bytes) -> None:
        conn.send(b"+OK logged in\r\n")

    def do_STAT(self, conn: Conn, arg: bytes) -> None:
        total = sum(len(m) for m in self.messages)
        conn.send(b"+OK %d %d\r\n" % (len(self.messages), total))

    def do_LIST(self, conn: Conn, arg: bytes) -> None:
        lines = b"".join(b"%d %d\r\n" % (i, len(m)) for i, m in enumerate(self.messages, 1))
        conn.send(b"+OK\r\n" + lines + b".\r\n")

    def do_UIDL(self, conn: Conn, arg: bytes) -> None:
        lines = b"".join(b"%d u%d\r\n" % (i, i) for i in range(1, len(self.messages) + 1))
        conn.send(b"+OK\r\n" + lines + b".\r\n")

    def do_RETR(self, conn: Conn, arg: bytes) -> None:
        raw = self.messages[int(arg) - 1]
        conn.send(b"+OK\r\n" + raw.replace(b"\r\n.", b"\r\n..") + b".\r\n")

    def do_NOOP(self, conn: Conn, arg: bytes) -> None:
        conn.send(b"+OK\r\n")

    def do_QUIT(self, conn: Conn, arg: bytes) -> bool:
        conn.send(b"+OK bye\r\n")
        return False


# -- running syncer ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """A finished command: exit status, output, its own peak RSS (bytes) and wall time."""

    returncode: int
    stdout: str
    stderr: str
    peak_rss: int
    seconds: float


#: Runs argv[1:] and writes its peak RSS (KiB, from wait4) to argv[0]. A fresh, small
#: interpreter forks it: Linux carries the forking process's RSS high-water mark over
#: exec into ru_maxrss, so forking syncer straight from pytest (80 MB) would report
#: pytest's size, not syncer's. This wrapper is about 10 MB, an upper bound on the error.
_WRAPPER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(argv: list[str], env: dict[str, str], cwd: Path, limit: float = 120) -> Measured:
    """Run ``argv`` (killed after ``limit`` seconds); report its own peak RSS and wall time."""
    out, err, rss = cwd / "stdout.txt", cwd / "stderr.txt", cwd / "rss.txt"
    started = time.monotonic()
    wrapped = [sys.executable, "-S", "-c", _WRAPPER, str(rss), *argv]
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(wrapped, env=env, cwd=cwd, stdout=o, stderr=e)
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            subprocess.run(["pkill", "-KILL", "-P", str(proc.pid)], check=False)
            proc.wait()
    peak = int(rss.read_text()) * 1024 if rss.exists() else 0
    return Measured(
        proc.returncode,
        out.read_text(errors="replace"),
        err.read_text(errors="replace"),
        peak,
        time.monotonic() - started,
    )
