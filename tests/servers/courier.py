"""A real Courier-IMAP 5 on loopback ports, for tests: Debian's build, run privately.

Debian's ``courier-imap`` conflicts with the installed ``dovecot-imapd``, so its
binaries (and courier-authlib's) come unpacked from the .deb files
(:mod:`tests.servers.debs`). Courier has its configuration and the authentication
daemon's socket at compiled-in paths (``/etc/courier``, ``/run/courier``,
``/usr/lib/courier-authlib``), so :class:`CourierServer` runs everything inside a
private mount namespace (``unshare -m``) where those paths are bind mounts of
directories it owns; nothing on the host changes.

Inside: ``authdaemond`` with the ``authuserdb`` module (users in ``userdb.dat`` made
with ``makedatprog``, passwords as ``{SHA256}``), one ``couriertcpd`` serving IMAP
(plaintext until STARTTLS), one serving IMAPS through ``couriertls`` and one serving
POP3 (``courierpop3d``, USER/PASS, the same Maildir's INBOX). Mail is
Maildir++ under ``home/<user>/Maildir`` (uid/gid 9000): personal folders are
``INBOX.<name>`` with separator ``.``. Capabilities are Debian's default list: no
CONDSTORE, QRESYNC, LIST-STATUS, OBJECTID, UNSELECT or MOVE.

Known limits: IDLE is not advertised (syncer does not use it); no STARTTLS (imaplogin
fails to hand the connection to couriertls outside Debian's init setup; IMAPS works);
users added while the server runs become known when ``userdb.dat`` is rewritten
(authuserdb rereads it). uid 9000 gets a passwd entry inside the namespace, because
libgamin (Courier's folder watcher) names its socket after the user.

Public API: :class:`CourierServer`, :data:`CAPABILITIES`.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from imapclient import imap_utf7

from tests.servers import debs
from tests.servers.daemon import Daemon, free_ports, wait_for_greeting
from tests.servers.dovecot import MAIL_GID, MAIL_UID
from tests.servers.imap_helpers import ServerError
from tests.servers.running import MailUser, RunningServer
from tests.servers.tls import SERVER_HOSTNAME, TLSFiles, make_tls_files

#: Debian's ``IMAP_CAPABILITY`` from /etc/courier/imapd, less IDLE.
CAPABILITIES = (
    "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA"
)

#: The environment Debian's init scripts export from /etc/courier/imapd and imapd-ssl.
_IMAPD_ENV = {
    "IMAP_CAPABILITY": CAPABILITIES,
    "IMAP_CAPABILITY_TLS": CAPABILITIES + " AUTH=PLAIN",
    "IMAP_KEYWORDS": "1",
    "IMAP_ACL": "1",
    "IMAP_IDLE_TIMEOUT": "60",
    "IMAP_ENHANCEDIDLE": "0",
    "IMAP_CHECK_ALL_FOLDERS": "0",
    "IMAP_UMASK": "022",
    "IMAP_ULIMITD": "131072",
    "IMAP_USELOCKS": "1",
    "IMAP_TRASHFOLDERNAME": "Trash",
    "IMAP_EMPTYTRASH": "",
    "IMAP_MOVE_EXPUNGE_TO_TRASH": "0",
    "IMAP_MAILBOX_SANITY_CHECK": "1",
    "IMAP_DISABLETHREADSORT": "0",
    "IMAP_OBSOLETE_CLIENT": "0",
    "IMAP_STARTTLS": "NO",  # imaplogin fails to hand over to couriertls here
    "IMAP_TLS_REQUIRED": "0",
    "TLS_VERIFYPEER": "NONE",
    "AUTHSERVICE": "imap",
}

_MOUNTS_AND_RUN = """set -e
mount --bind "$BASE/etc" /etc/courier
mount --bind "$BASE/run" /run/courier
mount --bind "$ROOT/usr/lib/courier-authlib" /usr/lib/courier-authlib
# libgamin names its socket after the user: uid 9000 needs a passwd entry, or every
# SELECT waits 1.2 s for a file-monitor daemon it cannot reach.
{ cat /etc/passwd; echo "vmail:x:$MAIL_UID:$MAIL_GID::/nonexistent:/usr/sbin/nologin"; } \
    > "$BASE/passwd"
mount --bind "$BASE/passwd" /etc/passwd
"$ROOT/usr/lib/courier/courier-authlib/authdaemond" &
TCPD="$ROOT/usr/sbin/couriertcpd -address=127.0.0.1 -nodnslookup -noidentlookup"
TCPD="$TCPD -maxprocs=60 -maxperip=60"
LOGIN="$ROOT/usr/lib/courier/courier/imaplogin $ROOT/usr/bin/imapd Maildir"
IMAP_TLS=1 $TCPD "$IMAPS_PORT" "$COURIERTLS" -server -tcpd $LOGIN &
POP3="$ROOT/usr/lib/courier/courier/courierpop3login $ROOT/usr/lib/courier/courier/courierpop3d"
AUTHSERVICE=pop3 POP3AUTH="" POP3_STARTTLS=NO $TCPD "$POP3_PORT" $POP3 Maildir &
exec $TCPD "$IMAP_PORT" $LOGIN
"""


def _mount_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def _kill_namespace(namespace: str) -> None:
    """SIGKILL every process whose mount namespace is *namespace* (ours, made by unshare)."""
    if namespace == _mount_namespace(os.getpid()):
        return  # never the host's namespace
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _mount_namespace(int(entry)) == namespace:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry), signal.SIGKILL)


@dataclass(frozen=True, slots=True)
class CourierPorts:
    imap: int
    imaps: int
    pop3: int


class CourierServer(RunningServer[CourierPorts]):
    """One private Courier-IMAP instance; see the module docstring.

    :param base_dir: config, runtime files, homes and logs (under ``/tmp``).
    :param users: initial ``(name, password)`` logins.
    :param tls: certificate files; a fresh throwaway CA when omitted.
    """

    host = SERVER_HOSTNAME
    server_name = "Courier"
    personal_prefix = "INBOX."
    separator = "."

    def __init__(
        self,
        base_dir: Path,
        users: Iterable[tuple[str, str]] = (),
        *,
        tls: TLSFiles | None = None,
    ) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.log_path = self.base_dir / "courier.log"
        self.home_root = self.base_dir / "home"
        self._tls = tls
        self._users = dict(users)
        self._ports: CourierPorts | None = None
        self._daemon: Daemon | None = None
        self._lock = threading.Lock()
        self._root = debs.root_dir()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> None:
        """Start the daemons in a private mount namespace and wait for a greeting.

        :raises debs.ServerNotInstalled: naming what to install.
        :raises ServerError: with the log when it does not come up.
        """
        if self._daemon is not None:
            raise ServerError("the Courier server is already running")
        self._root = debs.ensure("courier")
        self._prepare_dirs()
        for attempt in range(3):
            ports = CourierPorts(*free_ports(3))
            self._daemon = Daemon(
                ["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", _MOUNTS_AND_RUN],
                self.log_path,
                self._env(ports),
                self.base_dir,
                namespace=True,
            )
            try:
                wait_for_greeting(self._daemon, ports.imap, timeout, self.log_tail)
            except ServerError as exc:
                self.stop()
                if attempt < 2 and "in use" in self.log_tail():
                    continue
                raise ServerError(f"Courier ({self.base_dir}) did not start: {exc}") from None
            self._ports = ports
            atexit.register(self.stop)
            return

    def stop(self) -> None:
        """Stop every Courier process; safe to call twice."""
        daemon, self._daemon = self._daemon, None
        self._ports = None
        if daemon is None:
            return
        atexit.unregister(self.stop)
        namespace = _mount_namespace(daemon.proc.pid)
        daemon.stop()
        # couriertcpd and gam_server start sessions of their own, out of reach of the
        # group signal; every process in the private mount namespace is one of ours.
        if namespace is not None:
            _kill_namespace(namespace)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "--- courier output ---\n" + "\n".join(text.splitlines()[-lines:])

    def _env(self, ports: CourierPorts) -> dict[str, str]:
        root = str(self._root)
        return dict(
            os.environ,
            **_IMAPD_ENV,
            BASE=str(self.base_dir),
            ROOT=root,
            IMAP_PORT=str(ports.imap),
            MAIL_UID=str(MAIL_UID),
            MAIL_GID=str(MAIL_GID),
            IMAPS_PORT=str(ports.imaps),
            POP3_PORT=str(ports.pop3),
            COURIERTLS=f"{root}/usr/bin/couriertls",
            TLS_CERTFILE=str(self.base_dir / "etc" / "imapd.pem"),
            IMAP_SHAREDINDEXFILE=str(self.base_dir / "etc" / "shared" / "index"),
            LD_LIBRARY_PATH=f"{root}/usr/lib",
        )

    def _prepare_dirs(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.base_dir.chmod(0o755)
        for sub in ("etc/shared", "run/authdaemon", "home"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        (self.base_dir / "etc" / "authdaemonrc").write_text(
            'authmodulelist="authuserdb"\ndaemons=3\nauthdaemonvar=/run/courier/authdaemon\n'
            'DEBUG_LOGIN=0\nDEFAULTOPTIONS=""\nLOGGEROPTS=""\n'
        )
        if self._tls is None:
            self._tls = make_tls_files(self.base_dir / "tls")
        pem = self.base_dir / "etc" / "imapd.pem"
        pem.write_bytes(self._tls.key.read_bytes() + self._tls.cert.read_bytes())
        pem.chmod(0o600)
        for name in self._users:
            self._make_home(name)
        self._write_userdb()

    # -- users ----------------------------------------------------------------------------------

    def home(self, user: str) -> Path:
        return self.home_root / user

    def _make_home(self, name: str) -> None:
        maildir = self.home(name) / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        subprocess.run(["chown", "-R", f"{MAIL_UID}:{MAIL_GID}", str(self.home(name))], check=True)

    def _write_userdb(self) -> None:
        """Rewrite ``userdb.dat`` and ``userdbshadow.dat`` (gdbm, via ``makedatprog``)."""
        etc = self.base_dir / "etc"
        info, shadow = [], []
        for name, password in self._users.items():
            home = self.home(name)
            info.append(f"{name}\tuid={MAIL_UID}|gid={MAIL_GID}|home={home}|mail={home}/Maildir")
            digest = base64.b64encode(hashlib.sha256(password.encode()).digest()).decode()
            shadow.append(f"{name}\tsystempw={{SHA256}}{digest}")
        makedat = str(self._root / "usr/lib/courier/courier-authlib/makedatprog")
        env = dict(os.environ, LD_LIBRARY_PATH=f"{self._root}/usr/lib")
        for lines, stem in ((info, "userdb"), (shadow, "userdbshadow")):
            text = "".join(line + "\n" for line in lines) + ".\n"
            result = subprocess.run(
                [makedat, "-", str(etc / f"{stem}.tmp"), str(etc / f"{stem}.dat")],
                input=text.encode(),
                capture_output=True,
                env=env,
                check=False,
            )
            if result.returncode != 0:
                raise ServerError(f"makedatprog {stem} failed: {result.stderr.decode().strip()}")

    def add_user(self, name: str | None = None, password: str | None = None) -> MailUser:
        """Create a login with an empty Maildir; works while the server runs."""
        name = name or f"user-{uuid.uuid4().hex[:12]}"
        password = password or f"pw-{uuid.uuid4().hex[:12]}"
        with self._lock:
            if name in self._users:
                raise ValueError(f"user {name!r} exists already")
            self._users[name] = password
            if (self.base_dir / "etc").exists():
                self._make_home(name)
                self._write_userdb()
        return MailUser(name, password)

    def remove_user(self, name: str) -> None:
        """Delete the login and its mail."""
        with self._lock:
            self._users.pop(name)
            self._write_userdb()
        shutil.rmtree(self.home(name), ignore_errors=True)

    # -- server-side changes ----------------------------------------------------------------------

    def folder_path(self, user: str, folder: str) -> Path:
        """The Maildir++ directory of personal *folder* (``a/b`` -> ``.a.b``)."""
        wire = self.wire_name(folder)
        root = self.home(user) / "Maildir"
        if wire.upper() == "INBOX":
            return root
        encoded: bytes = imap_utf7.encode(wire[len("INBOX.") :])
        return root / ("." + encoded.decode("ascii"))

    def reset_uidvalidity(
        self, user: str, folder: str, *, renumber: bool = False, new: int | None = None
    ) -> int:
        """Give *folder* a new UIDVALIDITY keeping its messages; return the new value.

        By default the header line of ``courierimapuiddb`` gets *new* (value + 1 when
        not given) and the UIDs stay; with *renumber* the file is deleted, as when it is
        lost, and Courier numbers the messages afresh from 1 with the current time as
        UIDVALIDITY.
        """
        old = self.uidvalidity(user, folder)
        uiddb = self.folder_path(user, folder) / "courierimapuiddb"
        if renumber:
            uiddb.unlink()
        else:
            lines = uiddb.read_text().splitlines(keepends=True)
            version, _validity, nextuid = lines[0].split()
            lines[0] = f"{version} {new if new is not None else old + 1} {nextuid}\n"
            uiddb.write_text("".join(lines))
        new = self.uidvalidity(user, folder)
        if new == old:
            raise ServerError(f"UIDVALIDITY of {folder!r} stayed {old}")
        return new
