"""A real Cyrus IMAP 3.x on loopback ports, for tests: Debian's build, run privately.

Debian's ``cyrus-imapd`` conflicts with the installed ``dovecot-imapd``, so the
binaries come unpacked from the .deb files (:mod:`tests.servers.debs`) and run with
``LD_LIBRARY_PATH`` pointing there. :class:`CyrusServer` writes its own ``imapd.conf``
and ``cyrus.conf`` into a directory, keeps logins in its own sasldb (``saslpasswd2``),
and runs ``master`` (as the ``cyrus`` user, which Debian's build insists on) with an
IMAP port (plaintext until STARTTLS), an IMAPS port and a POP3 port (plaintext until
STLS; the INBOX of each user) on 127.0.0.1.

Two namespace layouts, the two a user meets:

- ``debian``: Debian's defaults: personal folders under ``INBOX.`` with separator
  ``.``, other users under ``user.`` (``altnamespace: no``, ``unixhierarchysep: no``).
- ``upstream``: upstream's defaults: personal folders at the top level with ``/``,
  ``Other Users/`` and ``Shared Folders/`` (``altnamespace: yes``,
  ``unixhierarchysep: yes``), and ``conversations: yes``.

INBOX is created at a user's first login (``autocreate_quota: 0``). Both layouts
advertise OBJECTID, CONDSTORE, QRESYNC, LIST-STATUS. The helpers of
:class:`~tests.servers.imap_helpers.ImapHelpers` act like another mail client.

Known limits: Cyrus logs to syslog (absent here), so a failed start shows only
``master``'s own output; removed users keep their mailboxes until the server stops.

Public API: :class:`CyrusServer`, :data:`LAYOUTS`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tests.servers import debs
from tests.servers.daemon import Daemon, free_ports, wait_for_greeting
from tests.servers.imap_helpers import ServerError
from tests.servers.running import MailUser, RunningServer
from tests.servers.tls import SERVER_HOSTNAME, TLSFiles, make_tls_files

Layout = Literal["debian", "upstream"]

#: imapd.conf lines of each layout, and its personal prefix and separator.
LAYOUTS: dict[str, tuple[str, str, str]] = {
    "debian": ("altnamespace: no\nunixhierarchysep: no\n", "INBOX.", "."),
    "upstream": ("altnamespace: yes\nunixhierarchysep: yes\nconversations: yes\n", "", "/"),
}

#: The SASL realm the users live in: Cyrus asks for ``servername``'s.
_REALM = "localhost"
#: The admin login (``admins:``) for helpers that need more than the user's rights.
ADMIN = "cyrusadmin"


@dataclass(frozen=True, slots=True)
class CyrusPorts:
    imap: int
    imaps: int
    pop3: int


class CyrusServer(RunningServer[CyrusPorts]):
    """One private Cyrus instance; see the module docstring.

    :param base_dir: config, sasldb, spool and logs (under ``/tmp``: the ``cyrus``
        user must be able to reach it).
    :param users: initial ``(name, password)`` logins.
    :param layout: ``"debian"`` or ``"upstream"`` namespace defaults.
    :param tls: certificate files; a fresh throwaway CA when omitted.
    """

    host = SERVER_HOSTNAME
    server_name = "Cyrus"
    internal_users = frozenset({ADMIN})

    def __init__(
        self,
        base_dir: Path,
        users: Iterable[tuple[str, str]] = (),
        *,
        layout: Layout = "debian",
        tls: TLSFiles | None = None,
    ) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.layout = layout
        _conf, self.personal_prefix, self.separator = LAYOUTS[layout]
        self.config_path = self.base_dir / "imapd.conf"
        self.log_path = self.base_dir / "master.log"
        self._tls = tls
        self._users = dict(users)
        self._users[ADMIN] = f"admin-{uuid.uuid4().hex[:12]}"
        self._ports: CyrusPorts | None = None
        self._daemon: Daemon | None = None
        self._root = debs.root_dir()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> None:
        """Write the configuration, start ``master`` and wait for a greeting.

        :raises debs.ServerNotInstalled: naming what to install.
        :raises ServerError: with the master's output when it does not come up.
        """
        if self._daemon is not None:
            raise ServerError("the Cyrus server is already running")
        self._root = debs.ensure("cyrus")
        self._prepare_dirs()
        for attempt in range(3):
            ports = CyrusPorts(*free_ports(3))
            self._write_config(ports)
            self._daemon = Daemon(
                [self._bin("master"), "-C", str(self.config_path), "-M",
                 str(self.base_dir / "cyrus.conf"), "-p", str(self.base_dir / "master.pid")],
                self.log_path,
                self._env(),
                self.base_dir,
            )  # fmt: skip
            try:
                wait_for_greeting(self._daemon, ports.imap, timeout, self.log_tail)
            except ServerError as exc:
                self.stop()
                if attempt < 2 and "in use" in self.log_tail():
                    continue
                raise ServerError(f"Cyrus ({self.config_path}) did not start: {exc}") from None
            self._ports = ports
            atexit.register(self.stop)
            return

    def stop(self) -> None:
        """Stop ``master`` and its children; safe to call twice."""
        daemon, self._daemon = self._daemon, None
        self._ports = None
        if daemon is not None:
            atexit.unregister(self.stop)
            daemon.stop()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "--- master output ---\n" + "\n".join(text.splitlines()[-lines:])

    def _bin(self, name: str) -> str:
        return str(self._root / "usr/lib/cyrus/bin" / name)

    def _env(self) -> dict[str, str]:
        lib = self._root / "usr/lib/x86_64-linux-gnu"
        return dict(os.environ, LD_LIBRARY_PATH=str(lib))

    def _prepare_dirs(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.base_dir.chmod(0o755)
        for sub in ("conf/proc", "conf/socket", "conf/lock", "conf/sieve", "spool", "keys"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        if self._tls is None:
            self._tls = make_tls_files(self.base_dir / "tls")
        # Cyrus reads its key as the cyrus user: a copy it owns, not the session's files.
        for name, src in (("cert.pem", self._tls.cert), ("key.pem", self._tls.key)):
            shutil.copyfile(src, self.base_dir / "keys" / name)
        for name, password in self._users.items():
            self._write_sasl(name, password)
        subprocess.run(["chown", "-R", f"{debs.CYRUS_USER}:mail", str(self.base_dir)], check=True)

    def _write_config(self, ports: CyrusPorts) -> None:
        d = self.base_dir
        layout_conf, _prefix, _sep = LAYOUTS[self.layout]
        self.config_path.write_text(
            f"configdirectory: {d}/conf\n"
            f"defaultpartition: default\npartition-default: {d}/spool\n"
            f"admins: {ADMIN}\nallowplaintext: yes\nservername: {_REALM}\n"
            "sasl_pwcheck_method: auxprop\nsasl_auxprop_plugin: sasldb\n"
            f"sasl_sasldb_path: {d}/sasldb2\nsasl_mech_list: PLAIN LOGIN\n"
            "autocreate_quota: 0\n"
            f"sievedir: {d}/conf/sieve\nsyslog_prefix: syncer-test-cyrus\n"
            f"tls_server_cert: {d}/keys/cert.pem\ntls_server_key: {d}/keys/key.pem\n" + layout_conf
        )
        conf = str(self.config_path)
        (d / "cyrus.conf").write_text(
            "START {\n"
            f'  recover cmd="{self._bin("ctl_cyrusdb")} -C {conf} -r"\n'
            "}\nSERVICES {\n"
            f'  imap cmd="{self._bin("imapd")} -C {conf}" listen="127.0.0.1:{ports.imap}" '
            "prefork=1\n"
            f'  imaps cmd="{self._bin("imapd")} -s -C {conf}" '
            f'listen="127.0.0.1:{ports.imaps}" prefork=0\n'
            f'  pop3 cmd="{self._bin("pop3d")} -C {conf}" listen="127.0.0.1:{ports.pop3}" '
            "prefork=0\n"
            "}\nEVENTS {\n}\n"
        )

    # -- users ----------------------------------------------------------------------------------

    def _write_sasl(self, name: str, password: str, *, delete: bool = False) -> None:
        db = str(self.base_dir / "sasldb2")
        args = ["-d"] if delete else ["-p", "-c"]
        result = subprocess.run(
            ["saslpasswd2", "-f", db, "-u", _REALM, *args, name],
            input=b"" if delete else password.encode(),
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            raise ServerError(f"saslpasswd2 for {name!r} failed: {result.stderr.decode().strip()}")
        if os.path.exists(db):
            shutil.chown(db, debs.CYRUS_USER, "mail")

    def add_user(self, name: str | None = None, password: str | None = None) -> MailUser:
        """Create a login (its INBOX appears at first login); works while running."""
        name = name or f"user-{uuid.uuid4().hex[:12]}"
        password = password or f"pw-{uuid.uuid4().hex[:12]}"
        if name in self._users:
            raise ValueError(f"user {name!r} exists already")
        self._users[name] = password
        if self.config_path.exists():
            self._write_sasl(name, password)
        return MailUser(name, password)

    def remove_user(self, name: str) -> None:
        """Delete the login (its mailboxes stay until the server's directory goes)."""
        self._users.pop(name)
        self._write_sasl(name, "", delete=True)

    # -- server-side changes ----------------------------------------------------------------------

    def reset_uidvalidity(self, user: str, folder: str) -> int:
        """Give *folder* a new UIDVALIDITY keeping its messages, flags and dates.

        Cyrus has no tool to set a UIDVALIDITY, so the folder is copied out, deleted and
        created again under the same name (what a restore from backup does); the new
        mailbox gets a new UIDVALIDITY, fresh UIDs and a new MAILBOXID.
        """
        old = self.uidvalidity(user, folder)
        self.recreate_folder(user, folder)
        new = self.uidvalidity(user, folder)
        if new == old:
            raise ServerError(f"UIDVALIDITY of {folder!r} stayed {old}")
        return new
