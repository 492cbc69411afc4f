"""The mbsync side of the benchmarks, plus the measuring and mailbox-changing helpers.

docs/performance.md judges syncer by ratios to mbsync (isync 1.4, the fastest common
IMAP-to-disk client) measured in the same run, on the same server and corpus,
because these machines are too noisy for absolute times. This module is the
peer's half of that comparison:

- :func:`write_mbsync_config` / :func:`run_mbsync`: a pull-only mbsync channel
  (``Patterns *``, ``Create Near``, ``Sync Pull``, ``Expunge None``, ``SyncState *``)
  from the test Dovecot into a Maildir, over plain IMAP or IMAPS;
- :func:`timed`: whole-process wall time, peak RSS of the whole process tree
  (sampled from /proc, :mod:`tests.bench.rss`) and CPU time of one command, each
  run in a fresh child;
- :func:`write_notmuch_config` / :func:`run_mbsync_notmuch`: mbsync followed by
  ``notmuch new`` (Debian's notmuch) on the same Maildir: download + index, the
  pair users combine today;
- :func:`make_changes` / :func:`revert_changes`: "another client" flips flags on
  100 messages and delivers 100 new ones (a deterministic choice), then undoes it so
  every benchmark run starts from the same mailbox.

Not part of ``make test``; :mod:`tests.bench.run_bench` drives it.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from imapclient import IMAPClient

from tests.corpus import generate


@dataclass(frozen=True)
class ServerParams:
    """How a peer reaches the benchmark server.

    ``host`` is ``127.0.0.1`` for plain IMAP and ``localhost`` for IMAPS (the test
    certificate names ``localhost`` only).
    """

    host: str
    port: int
    user: str
    password: str
    tls: bool = False
    ca_file: Path | None = None


@dataclass(frozen=True)
class Measurement:
    """One timed command."""

    argv: tuple[str, ...]
    wall: float  # seconds, around the whole process
    max_rss_kb: int | None  # peak resident set size of the child, KiB
    returncode: int
    stdout: str
    stderr: str
    cpu: float | None = None  # user + system seconds of the whole process tree

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def error(self) -> str:
        """The last lines of output, for a failure message."""
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return " | ".join(text[-3:]) or f"exit status {self.returncode}"


def timed(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 3600,
) -> Measurement:
    """Run *argv* once in a fresh child: wall time, peak RSS of its whole process tree, CPU.

    The RSS is sampled from /proc every 20 ms over the child and all its
    descendants (worker processes included), summed; the CPU time (user + system)
    is the child's as ``wait4`` reports it, which includes every descendant it
    reaped.
    """
    from tests.bench.rss import TreeRSS

    with tempfile.TemporaryDirectory(prefix="bench-out-") as tmp:
        out_path, err_path = Path(tmp) / "out", Path(tmp) / "err"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            started = time.perf_counter()
            proc = subprocess.Popen(
                list(argv),
                env=dict(env) if env is not None else None,
                cwd=cwd,
                stdout=out,
                stderr=err,
            )
            killer = threading.Timer(timeout, proc.kill)
            killer.start()
            with TreeRSS(proc.pid, every=0.02) as rss:
                _pid, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
            killer.cancel()
            proc.returncode = os.waitstatus_to_exitcode(status)
        return Measurement(
            argv=tuple(argv),
            wall=wall,
            max_rss_kb=rss.peak // 1024 or None,
            returncode=proc.returncode,
            stdout=out_path.read_text(errors="replace"),
            stderr=err_path.read_text(errors="replace"),
            cpu=usage.ru_utime + usage.ru_stime,
        )


# -- mbsync ------------------------------------------------------------------------------------


def mbsync_binary() -> str:
    """Path of ``mbsync``; raises naming the Debian package when it is missing."""
    found = shutil.which("mbsync")
    if found is None:
        raise FileNotFoundError("mbsync is not installed: apt-get install isync")
    return found


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_mbsync_config(path: Path, params: ServerParams, maildir: Path) -> Path:
    """Write an mbsync configuration pulling every folder of *params* into *maildir*.

    One channel ``bench``: ``Patterns *``, ``Create Near``, ``Sync Pull``,
    ``Expunge None``, ``SyncState *`` (state files inside the Maildir folders), Maildir
    ``SubFolders Verbatim`` with INBOX at ``maildir/INBOX``.
    """
    maildir.mkdir(parents=True, exist_ok=True)
    if params.tls:
        if params.ca_file is None:
            raise ValueError("IMAPS needs the test CA (ca_file)")
        security = f"SSLType IMAPS\nCertificateFile {params.ca_file}\n"
    else:
        security = "SSLType None\n"
    # "AuthMechs *" means "secure enough for the SSLType"; plain IMAP needs LOGIN named.
    text = f"""\
# Written by tests/bench/mbsync.py
IMAPAccount bench
Host {params.host}
Port {params.port}
User {_quote(params.user)}
Pass {_quote(params.password)}
{security}AuthMechs LOGIN
Timeout 120

IMAPStore bench-far
Account bench

MaildirStore bench-near
Path {maildir}/
Inbox {maildir}/INBOX
SubFolders Verbatim

Channel bench
Far :bench-far:
Near :bench-near:
Patterns *
Create Near
Sync Pull
Expunge None
SyncState *
"""
    path.write_text(text)
    path.chmod(0o600)
    return path


def run_mbsync(config: Path, *, timeout: float = 3600) -> Measurement:
    """``mbsync -c CONFIG -a``, timed (see :func:`timed`)."""
    return timed([mbsync_binary(), "-c", str(config), "-a"], timeout=timeout)


def write_notmuch_config(path: Path, maildir: Path) -> Path:
    """A notmuch configuration indexing *maildir* (mbsync's state files ignored)."""
    path.write_text(
        f"[database]\npath={maildir}\n[user]\nname=Bench\nprimary_email=bench@example.org\n"
        "[new]\ntags=unread;inbox;\n"
        "ignore=.mbsyncstate;.uidvalidity;.mbsyncstate.journal;.mbsyncstate.new;.mbsyncstate.lock\n"
        "[maildir]\nsynchronize_flags=true\n"
    )
    return path


def run_mbsync_notmuch(config: Path, notmuch_config: Path, *, timeout: float = 3600) -> Measurement:
    """``mbsync -c CONFIG -a && notmuch new``, timed as one process tree (a shell)."""
    notmuch = shutil.which("notmuch")
    if notmuch is None:
        raise FileNotFoundError("notmuch is not installed: apt-get install notmuch")
    script = f"{mbsync_binary()} -c '{config}' -a && {notmuch} --config='{notmuch_config}' new"
    return timed(["/bin/sh", "-c", script], timeout=timeout)


def count_maildir(root: Path) -> int:
    """Messages in every ``cur``/``new`` directory under *root*."""
    total = 0
    for dirpath, _dirnames, filenames in os.walk(root):
        if os.path.basename(dirpath) in ("cur", "new"):
            total += len(filenames)
    return total


# -- changes behind the peers' backs -----------------------------------------------------------


@dataclass
class ChangeSet:
    """What :func:`make_changes` did, so :func:`revert_changes` can undo it."""

    #: (folder, uid, flag, whether it was added)
    toggled: list[tuple[str, int, str, bool]] = field(default_factory=list)
    #: (folder, uid) of every appended message
    appended: list[tuple[str, int]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({"toggled": self.toggled, "appended": self.appended})


def _connect(params: ServerParams) -> IMAPClient:
    if params.tls:
        import ssl

        context = ssl.create_default_context(cafile=str(params.ca_file))
        client = IMAPClient(params.host, port=params.port, ssl=True, ssl_context=context)
    else:
        client = IMAPClient(params.host, port=params.port, ssl=False)
    client.login(params.user, params.password)
    return client


def _selectable(client: IMAPClient) -> list[str]:
    return sorted(
        name
        for flags, _sep, name in client.list_folders()
        if b"\\Noselect" not in flags and b"\\NonExistent" not in flags
    )


def make_changes(
    params: ServerParams, *, flag_changes: int = 100, new_messages: int = 100, seed: int = 1
) -> ChangeSet:
    """Toggle one flag on *flag_changes* messages and append *new_messages* messages.

    The choice is deterministic for a given mailbox and *seed*: messages are picked
    from the sorted (folder, UID) list; each gets ``\\Flagged``, ``\\Seen`` or
    ``\\Answered`` toggled. New messages come from the corpus generator with another
    seed (so their Message-IDs are new), into the folders it assigns.
    """
    rng = random.Random(seed)
    changes = ChangeSet()
    client = _connect(params)
    try:
        everything: list[tuple[str, int]] = []
        for folder in _selectable(client):
            client.select_folder(folder, readonly=True)
            everything.extend((folder, uid) for uid in sorted(client.search("ALL")))
        picks = sorted(rng.sample(everything, min(flag_changes, len(everything))))
        by_folder: dict[str, list[int]] = {}
        for folder, uid in picks:
            by_folder.setdefault(folder, []).append(uid)
        for folder, uids in by_folder.items():
            client.select_folder(folder)
            current = client.get_flags(uids)
            for uid in uids:
                flag = rng.choice(("\\Flagged", "\\Seen", "\\Answered"))
                had = flag.encode() in current.get(uid, ())
                if had:
                    client.remove_flags([uid], [flag], silent=True)
                else:
                    client.add_flags([uid], [flag], silent=True)
                changes.toggled.append((folder, uid, flag, not had))
        existing = set(_selectable(client))
        for message in generate(new_messages, seed=seed + 10_000):
            if message.folder not in existing:
                client.create_folder(message.folder)
                existing.add(message.folder)
            response = client.append(
                message.folder, message.raw, flags=message.flags, msg_time=message.internaldate
            )
            match = re.search(rb"APPENDUID \d+ (\d+)", response)
            if match is None:
                raise RuntimeError(f"APPEND gave no APPENDUID: {response!r}")
            changes.appended.append((message.folder, int(match.group(1))))
    finally:
        client.logout()
    return changes


def revert_changes(params: ServerParams, changes: ChangeSet) -> None:
    """Undo :func:`make_changes`: flags back, appended messages expunged."""
    client = _connect(params)
    try:
        by_folder: dict[str, list[tuple[int, str, bool]]] = {}
        for folder, uid, flag, added in changes.toggled:
            by_folder.setdefault(folder, []).append((uid, flag, added))
        for folder, items in by_folder.items():
            client.select_folder(folder)
            for uid, flag, added in items:
                if added:
                    client.remove_flags([uid], [flag], silent=True)
                else:
                    client.add_flags([uid], [flag], silent=True)
        appended: dict[str, list[int]] = {}
        for folder, uid in changes.appended:
            appended.setdefault(folder, []).append(uid)
        for folder, uids in appended.items():
            client.select_folder(folder)
            client.add_flags(uids, [b"\\Deleted"], silent=True)
            client.uid_expunge(uids)
    finally:
        client.logout()
