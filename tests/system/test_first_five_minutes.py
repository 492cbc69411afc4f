"""The issue's bar, as a new user meets syncer: in a fresh virtual environment outside the
repository, `pip install <checkout>`, `syncer config init --provider generic`, edit host and
user, `syncer sync --dry-run`, `syncer sync`, `syncer search from:x word` -- no other step.

To stay fast the new environment borrows this one's installed dependencies (a ``.pth`` line
naming its site-packages; pip itself is not given them) and pip installs only syncer
(``--no-deps``; the build backend comes from pip's cache). The import is checked to come
from the new environment, not from this checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.servers.dovecot import DovecotServer, MailUser

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _mail(n: int, sender: str, subject: str, body: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: me@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <five{n}@example.com>\r\nDate: Mon, 2 Dec 2024 09:0{n}:00 +0000\r\n\r\n"
        f"{body}\r\n"
    ).encode()


@pytest.fixture(scope="module")
def installed(checkout: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with `pip install <checkout>`; returns its bin directory."""
    venv = tmp_path_factory.mktemp("user") / "venv"
    # No pip of its own (ensurepip costs most of the set-up): this pip installs into it.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "."],
        check=True,
        capture_output=True,
        cwd=checkout,
    )
    where = subprocess.run(
        [str(python), "-c", "import syncer; print(syncer.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=venv.parent,
    ).stdout
    assert where.startswith(str(venv)), where
    return venv / "bin"


def test_install_init_edit_dry_run_sync_search(
    installed: Path, dovecot: DovecotServer, dovecot_user: MailUser, tmp_path: Path
) -> None:
    dovecot.append(
        dovecot_user.name, "INBOX", _mail(1, "alice@example.com", "Invoice 42", "the invoice")
    )
    dovecot.append(
        dovecot_user.name, "INBOX", _mail(2, "bob@example.com", "Lunch", "an invoice too")
    )
    dovecot.append(dovecot_user.name, "Archive", _mail(3, "alice@example.com", "Hello", "no bill"))
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": f"{installed}:{os.environ['PATH']}",
        "HOME": str(home),
        "SYNCER_MAIL_PASSWORD": dovecot_user.password,
        "LANG": "C.UTF-8",
    }

    def syncer(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["syncer", *args], cwd=home, env=env, capture_output=True, text=True, timeout=120
        )

    init = syncer("config", "init", "--provider", "generic")
    assert init.returncode == 0, init.stderr
    config = home / "syncer.toml"
    text = config.read_text()
    text = text.replace('host = "imap.example.com"', f'host = "{dovecot.host}"')
    text = text.replace('username = "me@example.com"', f'username = "{dovecot_user.name}"')
    text = text.replace(
        "# port = 993", f'port = {dovecot.ports.imaps}\nca_file = "{dovecot.tls.ca}"'
    )
    config.write_text(text)

    dry = syncer("sync", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "mail (imap): first sync: 3 messages" in dry.stdout
    assert not (home / "archive.db").exists()

    sync = syncer("sync")
    assert sync.returncode == 0, sync.stdout + sync.stderr
    assert "3 new" in sync.stdout
    assert "Creating the archive" in sync.stderr or "archive.created" in sync.stderr

    found = syncer("search", "from:alice", "invoice")
    assert found.returncode == 0, found.stderr
    assert "Invoice 42" in found.stdout
    assert "Lunch" not in found.stdout and "Hello" not in found.stdout
