"""`make demo`: syncer against a throwaway local Dovecot, end to end, in under a minute.

Starts the same Dovecot harness the tests use (own config, loopback ports, a
throwaway CA), seeds a generated sample mailbox (a few hundred messages over
several folders, attachments, non-ASCII headers and folder names, flags),
writes demo/syncer.toml, runs `syncer sync` twice into demo/archive.db (a full
sync, then an incremental one that shows almost no work), prints
`syncer status` and two searches, stops the server, adds a demo web user and
prints the `syncer serve` command and the sign-in to see the archive in a
browser. Nothing outside demo/ and a temporary folder is touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.corpus import generate
from tests.servers.dovecot import DovecotServer

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "demo"
MESSAGES = 300
#: The demo web user's password, printed at the end (a throwaway archive on loopback).
DEMO_WEB_PASSWORD = "demo-web-password"


def _syncer(config: Path, *args: str, env: dict[str, str]) -> None:
    cmd = [sys.executable, "-m", "syncer", "--config", str(config), *args]
    print(f"\n$ syncer {' '.join(args)}", flush=True)
    subprocess.run(cmd, env=env, check=True)


def main() -> int:
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir()
    base = Path(tempfile.mkdtemp(prefix="syncer-demo-"))
    os.chmod(base, 0o755)  # Dovecot's unprivileged processes must reach it
    try:
        with DovecotServer(base / "dovecot", [("demo", "demo-password")]) as server:
            counts = server.seed(
                "demo",
                (
                    (m.folder, m.raw, m.flags, m.internaldate)
                    for m in generate(MESSAGES, seed=7, size_profile="small")
                ),
            )
            print(f"Seeded a local Dovecot with {sum(counts.values())} messages: {counts}")
            ca = base / "demo-ca.pem"
            shutil.copy(server.tls.ca, ca)
            config = DEMO / "syncer.toml"
            config.write_text(
                f"""# Written by `make demo`: a throwaway Dovecot on loopback, with its own CA.
[archive]
url = "sqlite:///archive.db"

[[accounts]]
name = "demo"
host = "{server.host}"
port = {server.ports.imaps}
security = "tls"
ca_file = "{ca}"
username = "demo"
password_env = "SYNCER_DEMO_PASSWORD"
""",
                encoding="utf-8",
            )
            env = {**os.environ, "SYNCER_DEMO_PASSWORD": "demo-password"}
            _syncer(config, "init", env=env)
            _syncer(config, "sync", env=env)
            print("\nAnother client delivers two messages and flags one; sync again:")
            for subject in ("late news", "later news"):
                server.append(
                    "demo", "INBOX", f"Subject: {subject}\r\n\r\nArrived later.\r\n".encode()
                )
            inbox = server.uids("demo", "INBOX")
            server.add_flags("demo", "INBOX", inbox[:1], ["\\Flagged"])
            _syncer(config, "sync", env=env)
            _syncer(config, "check", env=env)
            _syncer(config, "status", env=env)
            _syncer(config, "search", "--limit", "5", "is:live has:attachment", env=env)
            _syncer(config, "search", "--count", "news", env=env)
            _syncer(config, "verify", env=env)
            print("\n$ syncer user add demo --role admin --password-stdin", flush=True)
            subprocess.run(
                [sys.executable, "-m", "syncer", "--config", str(config), "user", "add",
                 "demo", "--role", "admin", "--password-stdin"],
                input=f"{DEMO_WEB_PASSWORD}\n", text=True, env=env, check=True,
            )  # fmt: skip
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(
        f"\nThe archive is in {DEMO / 'archive.db'}; its configuration in {DEMO / 'syncer.toml'}."
    )
    print(
        "\nSee it in a browser (the web archive):\n"
        f"  {sys.executable} -m syncer --config {DEMO / 'syncer.toml'} serve"
        " --listen 127.0.0.1:8080\n"
        f"  then open http://127.0.0.1:8080/ and sign in as demo / {DEMO_WEB_PASSWORD}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
