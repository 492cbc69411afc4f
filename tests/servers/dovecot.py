"""A real Dovecot (IMAP + POP3) on loopback ports, for tests, demos and benchmarks.

syncer is tested against the Dovecot that Debian ships (``dovecot-imapd``,
``dovecot-pop3d``), not against a mock: the interesting bugs live in what real
servers send. :class:`DovecotServer` writes its own ``dovecot.conf`` into a
directory, starts ``dovecot -F`` as a child process on four free ports
(IMAP with STARTTLS, IMAPS, POP3 with STLS, POP3S), and stops it without
leaving processes behind. It imports nothing from pytest so that ``make demo``
and the benchmarks can use it too::

    with DovecotServer(Path("/tmp/dv"), [("alice", "secret")]) as server:
        uid = server.append("alice", "INBOX", b"Subject: hi\\r\\n\\r\\nbody\\r\\n")

    python -m tests.servers.dovecot --dir /tmp/dv --user alice:secret

What the server offers:

- Users live in passwd-files (scheme PLAIN, one file per user) with uid/gid
  9000, an id with no system account. Users can be added and removed while the
  server runs (:meth:`DovecotServer.add_user`).
- Mail is ``maildir:~/Maildir:LAYOUT=fs`` with separator ``/`` (Maildir++
  would refuse dots in folder names).
- Three namespaces: personal (prefix ``""``), ``shared/<owner>/`` for folders
  another user was granted (:meth:`DovecotServer.grant`), and ``Public/``
  (:meth:`DovecotServer.create_public_folder`); all use separator ``/``.
- SPECIAL-USE on ``Sent``, ``Archive``, ``Trash`` and ``Drafts`` (shown once they exist).
- ``capabilities=`` replaces the advertised IMAP CAPABILITY list
  (``imap_capability``, before and after login) to mimic servers without
  CONDSTORE, QRESYNC, ...; :data:`FALLBACK_CAPABILITIES` is such a list.
  Dovecot still *accepts* the hidden commands; only the advertisement changes.
- ``apop=True`` enables the POP3 APOP mechanism (it needs the plaintext
  passwords the passwd-file keeps); the greeting then carries the timestamp.

The helpers (``append``, ``set_flags``, ``expunge``, ``reset_uidvalidity``, ...)
act like "another mail client" changing the mailbox behind syncer's back.
:meth:`DovecotServer.seed` writes Maildir files directly and is meant for big
corpora (10,000 messages in about a second; see :mod:`tests.servers.maildir`).
The configuration text lives in :mod:`tests.servers.dovecot_conf`.

Known limits: the server listens on 127.0.0.1 only and the certificate names
only ``localhost``; user names are restricted to ``[A-Za-z0-9._+-]``; a
removed user may still log in for up to a second (Dovecot's passwd-file check
interval); at most 26 keywords per folder can be seeded (Maildir letters).

Public API: :class:`DovecotServer`, :class:`Ports`, :class:`MailUser`,
:func:`find_binaries`, :class:`DovecotError`, :class:`DovecotNotInstalled`,
:data:`FULL_CAPABILITIES`, :data:`FALLBACK_CAPABILITIES`, :data:`HIDDEN_IN_FALLBACK`.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from imapclient import imap_utf7

from tests.servers.daemon import free_ports
from tests.servers.dovecot_conf import render_config, render_oauth2_config
from tests.servers.imap_helpers import Flag, ServerError
from tests.servers.maildir import MaildirWriter, make_maildir
from tests.servers.running import MailUser as MailUser
from tests.servers.running import RunningServer
from tests.servers.tls import SERVER_HOSTNAME, TLSFiles, make_tls_files

#: uid/gid of every mail user: deliberately not a system account.
MAIL_UID = 9000
MAIL_GID = 9000

#: Debian packages that provide the binaries this module runs.
DEBIAN_PACKAGES = "dovecot-imapd dovecot-pop3d"

#: User names become file names and passwd-file fields; keep them simple.
_USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")

#: What Debian's Dovecot 2.3.19 advertises after login with this module's config
#: (``ACL`` and ``RIGHTS=TEXK`` come from the imap_acl plugin, ``SPECIAL-USE`` from
#: the ``special_use`` mailboxes). It has no OBJECTID (:rfc:`8474`) to begin with.
FULL_CAPABILITIES = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES "
    "THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN "
    "NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES "
    "WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW "
    "STATUS=SIZE SAVEDATE LITERAL+ NOTIFY SPECIAL-USE ACL RIGHTS=TEXK"
)
#: Extensions the "fallback" profile hides, forcing clients onto plain RFC 3501 paths.
HIDDEN_IN_FALLBACK = ("CONDSTORE", "QRESYNC", "LIST-STATUS", "OBJECTID")
#: The full list minus :data:`HIDDEN_IN_FALLBACK`, for ``capabilities=``.
FALLBACK_CAPABILITIES = " ".join(
    cap for cap in FULL_CAPABILITIES.split() if cap not in HIDDEN_IN_FALLBACK
)


class DovecotError(ServerError):
    """Dovecot could not be started, or a helper command failed."""


class DovecotNotInstalled(DovecotError):
    """The ``dovecot`` or ``doveadm`` binary is missing."""


@dataclass(frozen=True, slots=True)
class Ports:
    """The loopback ports of one running server."""

    imap: int  # IMAP, plaintext until STARTTLS
    imaps: int  # IMAP over implicit TLS
    pop3: int  # POP3, plaintext until STLS
    pop3s: int  # POP3 over implicit TLS


def find_binaries(search_path: str | None = None) -> tuple[str, str]:
    """Return the paths of ``dovecot`` and ``doveadm``.

    :param search_path: directories to look in; ``$PATH`` plus ``/usr/sbin`` by default.
    :raises DovecotNotInstalled: naming the Debian packages to install.
    """
    # Debian installs dovecot into /usr/sbin, which is off PATH for ordinary users.
    search = search_path or os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin"])
    dovecot = shutil.which("dovecot", path=search)
    doveadm = shutil.which("doveadm", path=search)
    if dovecot is None or doveadm is None:
        raise DovecotNotInstalled(
            "Dovecot is not installed: the IMAP/POP3 tests need a real server. "
            f"Install the Debian packages: apt-get install {DEBIAN_PACKAGES}"
        )
    return dovecot, doveadm


class DovecotServer(RunningServer[Ports]):
    """One Dovecot instance owned by this process; see the module docstring.

    :param base_dir: directory for config, sockets, logs and mail. Every ancestor
        must be traversable by other users (Dovecot's login processes run as
        ``dovenull`` and mail processes as uid 9000), so prefer a directory made
        by ``tempfile.mkdtemp()`` under ``/tmp`` over pytest's 0700 ``tmp_path``.
        Keep it short: Dovecot's UNIX sockets live inside it.
    :param users: initial ``(name, password)`` logins.
    :param capabilities: when given, the exact post-login IMAP CAPABILITY list.
    :param apop: offer POP3 APOP (``auth_mechanisms = plain login apop``).
    :param pop3_no_flag_updates: stop POP3 RETR from setting ``\\Seen``.
    :param tls: certificate files to use; a fresh throwaway CA when omitted.
    :param virtual: load Dovecot's ``virtual`` plugin with a ``Labels/`` namespace whose
        folders are saved searches (``~/virtual/NAME/dovecot-virtual``), and give
        ``[Gmail]/All Mail`` SPECIAL-USE ``\\All``: the Gmail double (tests/servers/gmail.py).
    :param oauth2_introspection_url: also accept OAuth2 bearer tokens (SASL XOAUTH2 and
        OAUTHBEARER), checked by POSTing them to this :rfc:`7662` introspection endpoint
        (Dovecot's ``oauth2`` passdb); passwords keep working.
    """

    #: The name clients connect to; the certificate is valid for this name only.
    host = SERVER_HOSTNAME
    server_name = "Dovecot"
    error = DovecotError

    def __init__(
        self,
        base_dir: Path,
        users: Iterable[tuple[str, str]] = (),
        *,
        capabilities: str | None = None,
        apop: bool = False,
        pop3_no_flag_updates: bool = False,
        tls: TLSFiles | None = None,
        oauth2_introspection_url: str | None = None,
        virtual: bool = False,
    ) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.virtual = virtual
        self.oauth2_introspection_url = oauth2_introspection_url
        self.oauth2_config_path = self.base_dir / "dovecot-oauth2.conf.ext"
        self.capabilities = capabilities
        self.apop = apop
        self.pop3_no_flag_updates = pop3_no_flag_updates
        self.config_path = self.base_dir / "dovecot.conf"
        self.log_path = self.base_dir / "dovecot.log"
        self.run_dir = self.base_dir / "run"
        self.state_dir = self.base_dir / "state"
        self.home_root = self.base_dir / "home"
        self.public_dir = self.base_dir / "public"
        self.passwd_dir = self.base_dir / "passwd"
        self._tls = tls
        self._users: dict[str, str] = {}
        for name, password in users:
            self._check_user(name, password)
            self._users[name] = password
        self._ports: Ports | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # passwd-file rewrites may come from several threads
        self._maildir = MaildirWriter(MAIL_UID, MAIL_GID)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """Process id of the Dovecot master (also its process group), or None."""
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = 10.0) -> None:
        """Write the configuration, start Dovecot and wait until every port answers.

        :raises DovecotNotInstalled: when the binaries are missing.
        :raises DovecotError: with the tail of the Dovecot log when it does not come up.
        """
        if self._proc is not None:
            raise DovecotError("the Dovecot server is already running")
        self._dovecot, _doveadm = find_binaries()
        self._prepare_dirs()
        for attempt in range(3):
            ports = Ports(*free_ports(4))  # another process may take one first: retried
            self._write_config(ports)
            self.log_path.write_bytes(b"")
            self._launch()
            try:
                self._wait_ready(ports, timeout)
            except DovecotError:
                self.stop()
                # Another process took one of the ports between picking and binding.
                if attempt < 2 and "Address already in use" in self.log_tail():
                    continue
                raise
            self._ports = ports
            atexit.register(self.stop)
            return

    def restart(
        self, *, down_for: float = 0.0, while_down: Callable[[], None] | None = None
    ) -> None:
        """Stop and start again on the same ports (clients see a server restart).

        :param while_down: called while the server is stopped (e.g. :meth:`seed`,
            which needs no running server: doveadm works on the files).
        """
        ports = self.ports
        self.stop()
        if while_down is not None:
            while_down()
        time.sleep(down_for)
        self._write_config(ports)
        self._launch()
        self._wait_ready(ports, 10.0)
        self._ports = ports
        atexit.register(self.stop)

    def stop(self) -> None:
        """Stop the master and every child process; safe to call twice."""
        proc, self._proc = self._proc, None
        watchdog, self._watchdog = self._watchdog, None
        self._ports = None
        if watchdog is not None:
            watchdog.kill()
            watchdog.wait()
            if watchdog.stdin is not None:
                watchdog.stdin.close()
        if proc is None:
            return
        atexit.unregister(self.stop)
        # SIGTERM the whole process group (its id is the master's pid: it runs in its own
        # session), not just the master: a master that asks its children to exit can wait
        # 5 s for a login process stuck in a stats-writer handshake.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # Sweep up any child that outlived the master (it would keep the mail files busy)
        # and wait until the group is gone, so callers may delete the directory at once.
        deadline = time.monotonic() + 5
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
            while time.monotonic() < deadline:
                time.sleep(0.01)
                os.killpg(proc.pid, 0)  # ProcessLookupError once the last one is reaped

    def log_tail(self, lines: int = 40) -> str:
        """The last *lines* of the Dovecot log (errors from start-up land here)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _prepare_dirs(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.base_dir.chmod(0o755)
        for parent in self.base_dir.parents:
            if not parent.stat().st_mode & 0o001:
                raise DovecotError(
                    f"{parent} is not traversable by other users; Dovecot's login and mail "
                    "processes (dovenull, uid 9000) could not reach "
                    f"{self.base_dir}. Use a directory under /tmp."
                )
        for path in (self.run_dir, self.state_dir):
            path.mkdir(exist_ok=True)
        for path in (self.home_root, self.public_dir, self.state_dir / "acl"):
            path.mkdir(exist_ok=True)
            os.chown(path, MAIL_UID, MAIL_GID)
        if self._tls is None:
            self._tls = make_tls_files(self.base_dir / "tls")
        self.passwd_dir.mkdir(exist_ok=True)
        for name in self._users:
            self._make_home(name)
            self._write_passwd(name)

    def _write_config(self, ports: Ports) -> None:
        self.config_path.write_text(render_config(self, ports, MAIL_UID, MAIL_GID))
        if self.oauth2_introspection_url is not None:
            self.oauth2_config_path.write_text(render_oauth2_config(self))

    def _launch(self) -> None:
        stderr = open(self.base_dir / "dovecot.stderr", "wb")  # noqa: SIM115 - child owns it
        try:
            # -F keeps the master in the foreground so we own its pid; a new session lets
            # stop() kill the whole process group.
            self._proc = subprocess.Popen(
                [self._dovecot, "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
            )
        finally:
            stderr.close()
        # If this Python process dies without stop() (SIGKILL, a second Ctrl-C), the
        # watchdog's stdin reaches EOF and it SIGTERMs Dovecot's process group, so no
        # master outlives its owner. (PR_SET_PDEATHSIG does not survive Dovecot's
        # credential changes.)
        self._watchdog = subprocess.Popen(
            [
                "/bin/sh",
                "-c",
                'read _eof; kill -TERM "-$1"',
                "dovecot-watchdog",
                str(self._proc.pid),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _wait_ready(self, ports: Ports, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        pending = [ports.imap, ports.imaps, ports.pop3, ports.pop3s]
        while pending:
            if self._proc.poll() is not None:
                raise DovecotError(
                    self._failure("exited with status " + str(self._proc.returncode))
                )
            try:
                with socket.create_connection(("127.0.0.1", pending[0]), timeout=1):
                    pass
                pending.pop(0)
            except OSError:
                if time.monotonic() > deadline:
                    raise DovecotError(
                        self._failure(f"did not listen on port {pending[0]}")
                    ) from None
                time.sleep(0.02)
        # Listening is the master's job; wait for a real greeting (login + auth processes up).
        with socket.create_connection(("127.0.0.1", ports.imap), timeout=timeout) as sock:
            greeting = sock.makefile("rb").readline()
        if not greeting.startswith(b"* OK"):
            raise DovecotError(self._failure(f"sent an unexpected greeting {greeting!r}"))

    def _failure(self, what: str) -> str:
        stderr = (self.base_dir / "dovecot.stderr").read_text(errors="replace").strip()
        return (
            f"Dovecot ({self.config_path}) {what}.\n"
            f"--- {self.log_path} (tail) ---\n{self.log_tail()}\n"
            + (f"--- stderr ---\n{stderr}\n" if stderr else "")
        )

    # -- users ----------------------------------------------------------------------------------

    @staticmethod
    def _check_user(name: str, password: str) -> None:
        if not _USERNAME_RE.match(name):
            raise ValueError(f"unsupported user name {name!r}")
        if any(c in password for c in ":\n\r"):
            raise ValueError("passwords must not contain ':' or line breaks (passwd-file format)")

    def home(self, user: str) -> Path:
        """The user's home directory; mail is in ``home / "Maildir"``."""
        return self.home_root / user

    def add_user(self, name: str | None = None, password: str | None = None) -> MailUser:
        """Create a login with an empty mailbox; works while the server runs.

        Without arguments the name is ``user-<uuid hex>``, unique per call.
        """
        name = name or f"user-{uuid.uuid4().hex[:12]}"
        password = password or f"pw-{uuid.uuid4().hex[:12]}"
        self._check_user(name, password)
        with self._lock:
            if name in self._users:
                raise ValueError(f"user {name!r} exists already")
            self._users[name] = password
            if self.passwd_dir.exists():
                self._make_home(name)
                self._write_passwd(name)
        return MailUser(name, password)

    def remove_user(self, name: str) -> None:
        """Disconnect *name*, delete the login and everything in its home."""
        with self._lock:
            self._users.pop(name)
            (self.passwd_dir / name).unlink(missing_ok=True)
        if self._proc is not None:
            self.kick(name)
        shutil.rmtree(self.home(name), ignore_errors=True)

    def _make_home(self, name: str) -> None:
        home = self.home(name)
        home.mkdir(exist_ok=True)
        os.chown(home, MAIL_UID, MAIL_GID)

    def _write_passwd(self, name: str) -> None:
        # One passwd-file per user (the path in dovecot.conf ends in %u): Dovecot checks a
        # passwd-file for changes at most once a second, so users added to one shared
        # file would stay unknown for up to a second; a new file is read on first use.
        line = f"{name}:{{PLAIN}}{self._users[name]}:{MAIL_UID}:{MAIL_GID}::{self.home(name)}::\n"
        tmp = self.passwd_dir / f".{name}.tmp"
        tmp.write_text(line)
        tmp.chmod(0o644)
        os.replace(tmp, self.passwd_dir / name)

    def reset_uidvalidity(
        self, user: str, folder: str, *, renumber: bool = False, new: int | None = None
    ) -> int:
        """Give *folder* a new UIDVALIDITY, keeping its messages; return the new value.

        By default the UIDs stay as they were (``doveadm mailbox update
        --uid-validity``, *new* defaults to the old value + 1). With *renumber* the
        folder's ``dovecot-uidlist`` and index files are deleted and Dovecot rebuilds
        them, as after a crash or a restore from backup: the messages get fresh UIDs
        from 1 in file-name order and Dovecot picks the UIDVALIDITY. Sessions of *user*
        are kicked first so none keeps the old state.

        :raises DovecotError: when the value did not change.
        """
        old = self.uidvalidity(user, folder)
        self.kick(user)
        if renumber:
            if new is not None:
                raise ValueError("renumber=True lets Dovecot choose the UIDVALIDITY")
            path = self._folder_path(user, folder)
            for stale in [path / "dovecot-uidlist", *path.glob("dovecot.index*")]:
                stale.unlink(missing_ok=True)
            self.doveadm("force-resync", "-u", user, folder)
        else:
            new = new if new is not None else old + 1
            self.doveadm("mailbox", "update", "-u", user, "--uid-validity", str(new), folder)
        got = self.uidvalidity(user, folder)
        if got == old or (new is not None and got != new):
            raise DovecotError(f"UIDVALIDITY of {folder!r} is {got} (was {old}, wanted {new})")
        return got

    def kick(self, user: str) -> None:
        """Disconnect every IMAP/POP3 session of *user*."""
        # doveadm kick exits 68 (EX_NOUSER) when nobody was connected; that is fine here.
        self.doveadm("kick", user, check=False)

    # -- shared and public namespaces ----------------------------------------------------------

    def grant(
        self,
        owner: str,
        folder: str,
        grantee: str,
        rights: Sequence[str] = ("lookup", "read", "write-seen"),
    ) -> str:
        """Let *grantee* see *owner*'s *folder* (:rfc:`4314` ACL); return its shared name.

        *grantee* then finds it as ``shared/<owner>/<folder>`` in LIST.
        """
        self.doveadm("acl", "set", "-u", owner, folder, f"user={grantee}", *rights)
        return f"shared/{owner}/{folder}"

    def create_public_folder(
        self,
        name: str,
        messages: Iterable[tuple[bytes, Sequence[Flag], datetime | None]] = (),
    ) -> str:
        """Create ``Public/<name>`` readable and writable by anyone; return the IMAP name.

        *messages* are ``(raw_bytes, flags, internaldate)``. ``\\Seen`` is private per
        user in the public namespace (``INDEXPVT``), so a ``\\Seen`` given here does not
        show; the other flags are shared.
        """
        path = self.public_dir / imap_utf7.encode(name).decode("ascii")
        make_maildir(path, MAIL_UID, MAIL_GID)
        acl = path / "dovecot-acl"
        acl.write_text("anyone lrwstipekxa\n")
        os.chown(acl, MAIL_UID, MAIL_GID)
        self._maildir.write(path, messages)
        return f"Public/{name}"

    # -- bulk seeding ---------------------------------------------------------------------------

    def seed(
        self,
        user: str,
        messages: Iterable[tuple[str, bytes, Sequence[Flag], datetime | None]],
        *,
        resync: bool = True,
    ) -> dict[str, int]:
        """Put many messages into *user*'s folders fast; return the count per folder.

        With ``resync=False`` the files are only written, as an MDA delivers while the
        server is down: Dovecot finds them on its next look at the folder.

        Each item is ``(folder, raw_bytes, flags, internaldate)``. Messages are written
        as Maildir files (flags in the ``:2,`` info suffix, keywords through
        ``dovecot-keywords``, INTERNALDATE as the file's mtime) and then
        ``doveadm force-resync`` assigns UIDs in the order given. Folders are created
        as needed. Far faster than APPEND for thousands of messages.
        """
        by_folder: dict[str, list[tuple[bytes, Sequence[Flag], datetime | None]]] = {}
        for folder, raw, flags, internaldate in messages:
            by_folder.setdefault(folder, []).append((raw, flags, internaldate))
        for folder, items in by_folder.items():
            path = self._folder_path(user, folder)
            make_maildir(path, MAIL_UID, MAIL_GID)
            self._maildir.write(path, items)
        if by_folder and resync:
            self.doveadm("force-resync", "-u", user, "*")
        return {folder: len(items) for folder, items in by_folder.items()}

    def _folder_path(self, user: str, folder: str) -> Path:
        root = self.home(user) / "Maildir"
        if folder.upper() == "INBOX":
            return root  # Maildir keeps INBOX in the root, whatever the layout
        parts = folder.split("/")
        if any(p in ("", ".", "..", "cur", "new", "tmp") for p in parts):
            raise ValueError(f"cannot seed into folder {folder!r}")
        # LAYOUT=fs stores names in modified UTF-7 with "/" as the directory separator.
        return root.joinpath(*(imap_utf7.encode(p).decode("ascii") for p in parts))

    # -- doveadm -------------------------------------------------------------------------------

    def doveadm(self, *args: str, check: bool = True, stdin: bytes | None = None) -> str:
        """Run ``doveadm -c <this config> ARGS`` and return its stdout.

        Useful beyond the helpers here, e.g. ``doveadm("save", "-u", user, "-m",
        folder, stdin=raw)`` delivers like an MDA would.

        :raises DovecotError: on a non-zero exit when *check* is true.
        """
        _dovecot, doveadm = find_binaries()
        result = subprocess.run(
            [doveadm, "-c", str(self.config_path), *args],
            input=stdin,
            capture_output=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise DovecotError(
                f"doveadm {' '.join(args)} failed ({result.returncode}): "
                f"{result.stderr.decode(errors='replace').strip()}"
            )
        return result.stdout.decode(errors="replace")


def main(argv: Sequence[str] | None = None) -> int:
    """Run a server until SIGTERM/SIGINT, printing its ports and logins as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="base directory (under /tmp)")
    parser.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="NAME:PASSWORD",
        help="a login to create (repeatable; default alice:alice-password)",
    )
    parser.add_argument("--capabilities", help="override the advertised IMAP capabilities")
    parser.add_argument("--apop", action="store_true", help="offer POP3 APOP")
    parser.add_argument(
        "--pop3-no-flag-updates", action="store_true", help="POP3 RETR does not set \\Seen"
    )
    args = parser.parse_args(argv)
    users = [tuple(u.split(":", 1)) for u in args.user] or [("alice", "alice-password")]
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with DovecotServer(
        args.dir,
        [(n, p) for n, p in users],
        capabilities=args.capabilities,
        apop=args.apop,
        pop3_no_flag_updates=args.pop3_no_flag_updates,
    ) as server:
        info = {
            "host": server.host,
            "ports": asdict(server.ports),
            "ca": str(server.tls.ca),
            "config": str(server.config_path),
            "users": [asdict(u) for u in server.users],
        }
        print(json.dumps(info), flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
