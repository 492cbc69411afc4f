"""Push mode of `syncer run` against a real Dovecot: NOTIFY, IDLE without NOTIFY, a
server restart, expunges and flag changes by another client, status, metrics, SIGTERM.

Every daemon polls once an hour (or as stated), so mail that shows up within
seconds came through push. The daemon is a subprocess, as systemd runs it.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration._daemon import (
    Daemon,
    account_toml,
    daemons,
    free_port,
    message,
    syncer_cli,
    wait_until,
    write_config,
)
from tests.servers.dovecot import FULL_CAPABILITIES, DovecotServer, MailUser

__all__ = ["daemons"]  # the fixture, imported for pytest

pytestmark = pytest.mark.integration

#: The 5 s the issue allows, measured from the APPEND's completion.
WITHIN = 5.0


def _setup(
    tmp_path: Path,
    server: DovecotServer,
    user: MailUser,
    *,
    metrics: str | None = None,
    scheduler: dict[str, object] | None = None,
    **account: object,
) -> tuple[Path, dict[str, str]]:
    config = write_config(
        tmp_path / "syncer.toml",
        [account_toml(server, user, "mail", **{"every": "1h", "push": None, **account})],
        metrics=metrics,
        scheduler={"grace_period": "10s", **(scheduler or {})},
    )
    env = {"PW_MAIL": user.password}
    init = syncer_cli(config, env, "init")
    assert init.returncode == 0, init.stderr
    return config, env


def _entry(tmp_path: Path, message_id: str) -> dict[str, Any] | None:
    """The newest entry of ``message_id``: folder, flags, gone, normalized; or None."""
    with sqlite3.connect(tmp_path / "archive.db") as db:
        row = db.execute(
            "SELECT f.display_name, e.flags, e.gone_at IS NOT NULL, m.normalized_at IS NOT NULL"
            " FROM entries e JOIN messages m ON m.id = e.message_pk"
            " JOIN folders f ON f.id = e.folder_id"
            " WHERE m.message_id_header = ? ORDER BY e.id DESC LIMIT 1",
            (f"<{message_id}>",),
        ).fetchone()
    if row is None:
        return None
    folder, flags, gone, normalized = row
    return {"folder": folder, "flags": flags, "gone": bool(gone), "normalized": bool(normalized)}


def _arrives(
    tmp_path: Path, message_id: str, within: float = WITHIN, *, normalized: bool = True
) -> dict[str, Any]:
    """Wait for ``message_id`` to be archived (and normalized)."""
    return wait_until(
        f"{message_id} archived" + (" and normalized" if normalized else ""),
        lambda: (
            (e := _entry(tmp_path, message_id)) is not None
            and (e["normalized"] or not normalized)
            and e
        ),
        within,
        every=0.05,
    )


def _start(config: Path, env: dict[str, str], daemons: list[Daemon]) -> Daemon:
    daemon = Daemon(config, env).start()
    daemons.append(daemon)
    daemon.wait_event("push.connected", timeout=20)
    daemon.wait_event("push.synced", timeout=20)  # the catch-up sync after connecting
    return daemon


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _status(config: Path, env: dict[str, str]) -> dict[str, Any]:
    result = syncer_cli(config, env, "status", "--json")
    assert result.returncode == 0, result.stderr
    (push,) = json.loads(result.stdout)["push"]
    assert isinstance(push, dict)
    return push


def test_notify_archives_new_mail_in_inbox_and_a_subfolder_within_seconds(
    tmp_path: Path, dovecot: DovecotServer, dovecot_user: MailUser, daemons: list[Daemon]
) -> None:
    user = dovecot_user.name
    dovecot.create_folder(user, "Projects/2025")
    listen = f"127.0.0.1:{free_port()}"
    config, env = _setup(tmp_path, dovecot, dovecot_user, metrics=listen)
    daemon = _start(config, env, daemons)
    assert daemon.events("push.connected")[0]["mode"] == "notify"

    dovecot.append(user, "INBOX", message(1, tag="push"))
    assert _arrives(tmp_path, "push1@example.com")["folder"] == "INBOX"
    dovecot.append(user, "Projects/2025", message(2, tag="push"))
    assert _arrives(tmp_path, "push2@example.com")["folder"] == "Projects/2025"
    catch_up, *narrow = [e["folders"] for e in daemon.events("push.synced")]
    assert catch_up == ["*"]
    assert {"INBOX", "Projects/2025"} <= {f for folders in narrow for f in folders}, narrow
    assert all("*" not in folders for folders in narrow), "each event synced its folder alone"
    polls = [e for e in daemon.events("run.completed") if e.get("job") == "sync:mail"]
    assert len(polls) <= 1, "only the start-up poll; the next is an hour away"

    push = _status(config, env)
    assert push["state"] == "connected" and push["mode"] == "notify" and push["since"]
    metrics = _get(f"http://{listen}/metrics")[1]
    assert 'syncer_push_connected{account="mail"} 1.0' in metrics
    assert 'syncer_push_delay_seconds_count{account="mail"} 2.0' in metrics
    assert _get(f"http://{listen}/healthz") == (200, "ok\n")

    asked = time.monotonic()
    assert daemon.stop(timeout=15) == 0
    assert time.monotonic() - asked < 10, "SIGTERM ends push within the grace period"
    assert _status(config, env)["state"] == "not running"


def test_an_expunge_and_a_flag_change_by_another_client_show_within_seconds(
    tmp_path: Path, dovecot: DovecotServer, dovecot_user: MailUser, daemons: list[Daemon]
) -> None:
    user = dovecot_user.name
    first = dovecot.append(user, "INBOX", message(1, tag="exp"))
    second = dovecot.append(user, "INBOX", message(2, tag="flag"))
    config, env = _setup(tmp_path, dovecot, dovecot_user)
    _start(config, env, daemons)
    # Archived before the changes, by the start-up poll or the catch-up sync.
    assert _arrives(tmp_path, "flag2@example.com", normalized=False)

    dovecot.add_flags(user, "INBOX", [second], ["\\Flagged"])
    wait_until(
        "the flag change",
        lambda: "\\Flagged" in (_entry(tmp_path, "flag2@example.com") or {}).get("flags", ""),
        WITHIN,
        every=0.05,
    )
    dovecot.expunge(user, "INBOX", [first])
    wait_until(
        "the expunge",
        lambda: (_entry(tmp_path, "exp1@example.com") or {}).get("gone"),
        WITHIN,
        every=0.05,
    )


def test_a_server_restart_loses_nothing_delivered_while_it_was_down(
    tmp_path: Path, make_dovecot: Any, daemons: list[Daemon]
) -> None:
    server: DovecotServer = make_dovecot()
    user = server.add_user()
    server.create_folder(user.name, "Lists")
    config, env = _setup(tmp_path, server, user)
    daemon = _start(config, env, daemons)

    def deliver_while_down() -> None:
        # Written into the Maildirs as an MDA would while IMAP is down.
        folders = ("INBOX", "Lists", "INBOX")
        server.seed(
            user.name,
            ((f, message(n, tag="down"), (), None) for n, f in enumerate(folders)),
            resync=False,
        )

    server.restart(down_for=1.5, while_down=deliver_while_down)
    daemon.wait_event("push.disconnected", timeout=10)
    daemon.wait_event("push.connected", timeout=30, count=2)
    for n in range(3):
        _arrives(tmp_path, f"down{n}@example.com", within=15)
    server.append(user.name, "Lists", message(9, tag="after"))
    assert _arrives(tmp_path, "after9@example.com")["folder"] == "Lists"


def test_without_notify_idle_gets_inbox_at_once_and_the_poll_the_other_folders(
    tmp_path: Path, make_dovecot: Any, daemons: list[Daemon]
) -> None:
    no_notify = " ".join(c for c in FULL_CAPABILITIES.split() if c != "NOTIFY")
    server: DovecotServer = make_dovecot(capabilities=no_notify)
    user = server.add_user()
    server.create_folder(user.name, "Other")
    config, env = _setup(tmp_path, server, user, every="12s")
    daemon = _start(config, env, daemons)
    assert daemon.events("push.connected")[0]["mode"] == "idle"
    assert _status(config, env)["mode"] == "idle"

    server.append(user.name, "INBOX", message(1, tag="idle"))
    assert _arrives(tmp_path, "idle1@example.com")["folder"] == "INBOX"
    assert ["INBOX"] in [e["folders"] for e in daemon.events("push.synced")]

    server.append(user.name, "Other", message(2, tag="poll"))
    before = len(daemon.events("run.completed"))
    # Not through IDLE (only INBOX is watched): the next scheduled poll, within 12 s.
    entry = wait_until(
        "the poll to archive the other folder",
        lambda: _entry(tmp_path, "poll2@example.com"),
        30,
    )
    assert entry["folder"] == "Other"
    # The entry is committed before the poll's run ends and logs run.completed: wait for it.
    daemon.wait_event("run.completed", timeout=15, count=before + 1)
    assert ["Other"] not in [e["folders"] for e in daemon.events("push.synced")]


def test_healthz_fails_while_push_is_down_for_longer_than_the_poll_interval(
    tmp_path: Path, dovecot: DovecotServer, dovecot_user: MailUser, daemons: list[Daemon]
) -> None:
    listen = f"127.0.0.1:{free_port()}"
    # Nothing listens on this port: neither push nor the poll can connect.
    config, env = _setup(
        tmp_path, dovecot, dovecot_user, metrics=listen, every="2s", port=free_port()
    )
    daemon = Daemon(config, env).start()
    daemons.append(daemon)
    daemon.wait_event("push.disconnected", timeout=20)
    _status_code, body = wait_until(
        "/healthz to fail",
        lambda: (got := _get(f"http://{listen}/healthz"))[0] == 503 and "push" in got[1] and got,
        20,
        every=0.2,
    )
    # The account has never synced either, which /healthz also reports.
    assert "push for account 'mail' down for " in body
    assert _status(config, env)["state"] == "down"
    assert 'syncer_push_connected{account="mail"} 0.0' in _get(f"http://{listen}/metrics")[1]
