"""Push mode's pure parts: its settings, and how it thins out the scheduled poll."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from syncer.config.schema import parse_config
from syncer.daemon.jobs import Runtime
from syncer.daemon.push import AccountPush, PushSupervisor, wants_push
from syncer.errors import ConfigError

ACCOUNT = {"name": "work", "host": "imap.example.com", "username": "me", "password_env": "P"}


def test_push_is_on_by_default_for_imap_and_never_for_pop3() -> None:
    config = parse_config(
        {
            "accounts": [
                ACCOUNT,
                {**ACCOUNT, "name": "off", "push": False},
                {**ACCOUNT, "name": "pop", "protocol": "pop3"},
            ]
        }
    )
    assert [wants_push(a) for a in config.accounts] == [True, False, False]
    assert config.scheduler.push_poll_factor == 4


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"protocol": "pop3", "push": True}, "push does not apply to a pop3 account"),
        ({"idle_folders": [f"F{n}" for n in range(10)]}, "at most 9 items"),
    ],
)
def test_push_settings_that_cannot_work_are_refused(extra: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"accounts": [{**ACCOUNT, **extra}]}, path=Path("/etc/syncer.toml"))
    assert problem in "\n".join(info.value.problems)


def _supervisor(factor: int) -> tuple[PushSupervisor, AccountPush]:
    config = parse_config({"accounts": [ACCOUNT], "scheduler": {"push_poll_factor": factor}})
    runtime = Runtime(config=config, store=None, holder="test:1")  # type: ignore[arg-type]
    supervisor = PushSupervisor(runtime)
    push = AccountPush(runtime, "work")  # not started: its state is set by hand below
    supervisor._accounts["work"] = push
    return supervisor, push


def test_the_poll_runs_every_nth_time_while_notify_is_connected() -> None:
    supervisor, push = _supervisor(3)
    assert supervisor.should_poll("work"), "not connected yet: poll as usual"
    push.state, push.mode = "connected", "notify"
    assert [supervisor.should_poll("work") for _ in range(6)] == [False, False, True] * 2
    push.mode = "idle"  # the folders not IDLEd on are seen by the poll alone
    assert all(supervisor.should_poll("work") for _ in range(3))
    push.state = "down"
    assert supervisor.should_poll("work")
    assert supervisor.should_poll("unknown")


def test_healthz_reports_push_down_for_longer_than_the_poll_interval() -> None:
    supervisor, push = _supervisor(4)
    push.state, push.since = "down", push.since - 901  # default_every is 15 minutes
    (problem,) = supervisor.problems()
    assert problem.startswith("push for account 'work' down for 90")
    push.state = "connected"
    assert supervisor.problems() == []


def test_events_arriving_during_a_sync_are_merged_into_the_next() -> None:
    pending = AccountPush(
        Runtime(config=parse_config({}), store=None, holder="t:1"),  # type: ignore[arg-type]
        "work",
    ).pending
    assert pending.take(0) is None
    pending.add(folders=[("INBOX", "INBOX")])
    pending.add(folders=[("&ANw-b", "Üb"), ("INBOX", "INBOX")])
    assert pending.take(0) == (False, {"INBOX": "INBOX", "&ANw-b": "Üb"})
    woke = threading.Event()

    def wake_when_taken() -> None:
        if pending.take(5):
            woke.set()

    waiter = threading.Thread(target=wake_when_taken)
    waiter.start()
    pending.add(everything=True)
    waiter.join(5)
    assert woke.is_set()
