"""Cyrus IMAP and Courier-IMAP (with their POP3 servers) unpacked from Debian's .deb files.

Debian's ``cyrus-imapd``, ``courier-imap`` and ``dovecot-imapd`` conflict (each provides
``imap-server``), as do ``cyrus-pop3d``, ``courier-pop`` and ``dovecot-pop3d``
(``pop3-server``), so only Dovecot is installed as a package. The other two are fetched
with ``apt-get download`` and unpacked with ``dpkg-deb -x`` into :data:`CACHE_DIR`
(``/var/cache/syncer-test-servers`` unless ``SYNCER_TEST_SERVERS_DIR`` says otherwise);
the servers run from there with ``LD_LIBRARY_PATH`` pointing at the unpacked libraries.
Their shared libraries that do not conflict with anything are installed normally
(:data:`LIBRARY_PACKAGES`), and Cyrus gets the ``cyrus`` system user its binaries insist
on running as. Courier's compiled-in paths (``/etc/courier``, ``/run/courier``,
``/usr/lib/courier-authlib``) are bind-mounted in a private mount namespace; this module
creates the empty mount points.

Stdlib only: ``make deps`` runs it with the system Python before the venv exists::

    python3 -m tests.servers.debs install      # as root; idempotent, a no-op when done

Public API: :data:`CACHE_DIR`, :func:`root_dir`, :func:`ensure`, :func:`install`,
:class:`ServerNotInstalled`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

#: Where the unpacked trees live (one ``root/`` shared by both servers).
CACHE_DIR = Path(os.environ.get("SYNCER_TEST_SERVERS_DIR", "/var/cache/syncer-test-servers"))

#: The .deb files each server is unpacked from (never installed: they conflict with Dovecot).
SERVER_DEBS = {
    "cyrus": ("cyrus-common", "cyrus-imapd", "cyrus-pop3d"),
    "courier": (
        "courier-imap",
        "courier-pop",
        "courier-base",
        "courier-authlib",
        "courier-authdaemon",
        "courier-authlib-userdb",
    ),
}

#: Their non-conflicting dependencies, installed as ordinary packages (from
#: ``apt-cache depends``; libraries ``ldd`` reports missing for the binaries the tests run).
LIBRARY_PACKAGES = (
    "libpcre3",
    "libxapian30",
    "libical3",
    "libsasl2-modules",
    "libsasl2-modules-db",
    "sasl2-bin",
    "libcourier-unicode4",
    "libidn12",
    "libgamin0",
    "gamin",
    "libltdl7",
    "libgdbm6",
    "libwrap0",
)

#: The user Debian's Cyrus binaries run as (``become_cyrus``); group ``mail`` as Debian has it.
CYRUS_USER = "cyrus"

#: Courier's compiled-in paths that the private mount namespace replaces.
COURIER_MOUNT_POINTS = (
    Path("/etc/courier"),
    Path("/run/courier"),
    Path("/usr/lib/courier-authlib"),
)

#: A file per server that says its unpacking finished, holding the packages it unpacked
#: (a tree unpacked before a package joined :data:`SERVER_DEBS` is unpacked again).
_DONE = ".unpacked-{name}"


def _unpacked(name: str) -> bool:
    try:
        done = (CACHE_DIR / _DONE.format(name=name)).read_text().split()
    except FileNotFoundError:
        return False
    return set(SERVER_DEBS[name]) <= set(done)


class ServerNotInstalled(RuntimeError):
    """The unpacked server, a library it needs or its system user is missing."""


def root_dir() -> Path:
    """The tree the .deb files are unpacked into (``usr/``, ``etc/`` below it)."""
    return CACHE_DIR / "root"


def _missing(name: str) -> list[str]:
    """What is still missing for *name* ("cyrus" or "courier"), in words."""
    missing = []
    if not _unpacked(name):
        missing.append(f"the unpacked {' '.join(SERVER_DEBS[name])} in {root_dir()}")
    if name == "cyrus":
        if shutil.which("saslpasswd2") is None:
            missing.append("saslpasswd2 (sasl2-bin)")
        try:
            pwd.getpwnam(CYRUS_USER)
        except KeyError:
            missing.append(f"the system user {CYRUS_USER!r}")
    if name == "courier" and not all(p.is_dir() for p in COURIER_MOUNT_POINTS):
        missing.append("the mount points " + ", ".join(map(str, COURIER_MOUNT_POINTS)))
    return missing


def ensure(name: str) -> Path:
    """Return :func:`root_dir` once *name* is usable, installing it first when root.

    :raises ServerNotInstalled: naming what is missing and the command that fixes it.
    """
    if os.geteuid() != 0:
        # Cyrus's master switches to the cyrus user; Courier needs unshare -m and mounts.
        raise ServerNotInstalled(
            f"the {name.capitalize()} test server runs as root only (it changes user or "
            "mounts its configuration in a private namespace); run the tests as root"
        )
    missing = _missing(name)
    if missing:
        install([name])
        missing = _missing(name)
    if missing:
        raise ServerNotInstalled(
            f"{name.capitalize()} IMAP for the tests is not installed: missing "
            + "; ".join(missing)
            + f". Run as root: make deps (or: python3 -m tests.servers.debs install {name}); "
            f"it downloads the Debian packages {' '.join(SERVER_DEBS[name])} without "
            f"installing them and installs {' '.join(LIBRARY_PACKAGES)}."
        )
    return root_dir()


def _apt_get(*args: str, cwd: Path | None = None) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # Other apt users on the machine (another session's install) hold the lock for a while.
    cmd = ["apt-get", "-o", "DPkg::Lock::Timeout=600", *args]
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ServerNotInstalled(f"{' '.join(cmd)} failed:\n{result.stderr.strip()}")


def _install_libraries() -> None:
    query = ["dpkg-query", "-W", "-f", "${Package} ${Status}\n", *LIBRARY_PACKAGES]
    out = subprocess.run(query, capture_output=True, text=True, check=False).stdout
    installed = {line.split()[0] for line in out.splitlines() if "install ok installed" in line}
    todo = [p for p in LIBRARY_PACKAGES if p not in installed]
    if todo:
        _apt_get("install", "-y", "-qq", "--no-install-recommends", *todo)


def _unpack(name: str) -> None:
    """``apt-get download`` the server's .deb files and ``dpkg-deb -x`` them into the root."""
    if _unpacked(name):
        return
    debs = CACHE_DIR / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    os.chmod(debs, 0o755)  # apt's _apt user downloads into it
    try:
        _apt_get("download", *SERVER_DEBS[name], cwd=debs)
    except ServerNotInstalled:
        _apt_get("update", "-qq")
        _apt_get("download", *SERVER_DEBS[name], cwd=debs)
    for package in SERVER_DEBS[name]:
        files = sorted(debs.glob(f"{package}_*.deb"))
        if not files:
            raise ServerNotInstalled(f"apt-get download {package} left no .deb in {debs}")
        subprocess.run(["dpkg-deb", "-x", str(files[-1]), str(root_dir())], check=True)
    (CACHE_DIR / _DONE.format(name=name)).write_text(" ".join(SERVER_DEBS[name]) + "\n")


def _make_cyrus_user() -> None:
    try:
        pwd.getpwnam(CYRUS_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
             "--gid", "mail", "--shell", "/usr/sbin/nologin", CYRUS_USER],
            check=True,
        )  # fmt: skip


def install(names: list[str] | None = None) -> None:
    """Install what the named servers (default both) need; idempotent. Needs root."""
    if os.geteuid() != 0:
        raise ServerNotInstalled("installing the test servers needs root (apt-get, useradd)")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    _install_libraries()
    for name in names or list(SERVER_DEBS):
        _unpack(name)
        if name == "cyrus":
            _make_cyrus_user()
        if name == "courier":
            for point in COURIER_MOUNT_POINTS:
                point.mkdir(parents=True, exist_ok=True)


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "install" or not set(argv[1:]) <= set(SERVER_DEBS):
        print("usage: python3 -m tests.servers.debs install [cyrus] [courier]", file=sys.stderr)
        return 2
    try:
        install(argv[1:] or None)
    except ServerNotInstalled as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
