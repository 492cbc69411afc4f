"""POP3 account keys: what is accepted, and how contradictions are refused.

Deleting mail from a server takes two explicit statements: ``leave_on_server =
false`` and *when* (``delete_after_archive = true`` or ``delete_after_days =
N``). Everything else is refused with a message that says what to change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from syncer.config.schema import parse_config
from syncer.errors import ConfigError
from syncer.sync.runner import pop3_options

POP = {
    "name": "home",
    "protocol": "pop3",
    "host": "pop.example.com",
    "username": "me",
    "password_env": "HOME_PASS",
}


def account(**keys: Any) -> Any:
    return parse_config({"accounts": [{**POP, **keys}]}).accounts[0]


def problem(**keys: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config({"accounts": [{**POP, **keys}]}, path=Path("/etc/syncer.toml"))
    (only,) = info.value.problems
    return only


def test_defaults_leave_mail_on_the_server_and_use_user_pass() -> None:
    acc = account()
    assert (acc.leave_on_server, acc.delete_after_archive, acc.delete_after_days) == (
        True,
        False,
        None,
    )
    assert acc.auth == "password"
    assert acc.effective_port == 995
    assert account(security="starttls").effective_port == 110
    assert not pop3_options(acc).deletes


def test_deleting_needs_leave_on_server_false_and_when() -> None:
    after_archive = pop3_options(account(leave_on_server=False, delete_after_archive=True))
    assert after_archive.delete_after_archive and after_archive.delete_after_days is None
    after_days = pop3_options(account(leave_on_server=False, delete_after_days=30))
    assert after_days.delete_after_days == 30 and not after_days.delete_after_archive
    assert pop3_options(account(leave_on_server=False, delete_after_days=0)).deletes


def test_a_delete_option_with_leave_on_server_by_default_is_refused() -> None:
    assert problem(delete_after_archive=True) == (
        "/etc/syncer.toml: accounts[0] (home): delete_after_archive = true deletes mail from "
        "the server, but leave_on_server is true (the default); set leave_on_server = false as "
        "well to confirm, or remove delete_after_archive"
    )


def test_leave_on_server_true_with_a_delete_option_is_a_contradiction() -> None:
    text = problem(leave_on_server=True, delete_after_days=7)
    assert "delete_after_days = 7 deletes mail from the server" in text
    assert "leave_on_server is true (as set)" in text


def test_both_delete_options_contradict_each_other() -> None:
    text = problem(leave_on_server=False, delete_after_archive=True, delete_after_days=7)
    assert "delete_after_archive = true and delete_after_days contradict each other" in text


def test_leave_on_server_false_alone_asks_when() -> None:
    text = problem(leave_on_server=False)
    assert "leave_on_server = false needs to know when to delete" in text
    assert "delete_after_archive = true" in text and "delete_after_days = N" in text


def test_delete_after_days_must_not_be_negative() -> None:
    text = problem(leave_on_server=False, delete_after_days=-1)
    assert text.startswith("/etc/syncer.toml: accounts[0] (home).delete_after_days: ")
    assert "greater than or equal to 0" in text


def test_auth_choices() -> None:
    assert account(auth="apop").auth == "apop"
    assert account(auth="sasl-plain").auth == "sasl-plain"
    text = problem(auth="cram-md5")
    assert "accounts[0] (home).auth: " in text
    assert "'password', 'apop', 'sasl-plain' or 'oauth2'" in text and "'cram-md5'" in text


def test_pop3_keys_on_an_imap_account_are_refused() -> None:
    text = problem(protocol="imap", auth="apop", leave_on_server=True)
    assert text == (
        "/etc/syncer.toml: accounts[0] (home): leave_on_server, auth are only for "
        'protocol = "pop3" accounts; remove them from this imap account'
    )


def test_imap_only_keys_on_a_pop3_account_are_refused() -> None:
    text = problem(namespaces=["personal"], max_bytes_per_second=100_000)
    assert text == (
        "/etc/syncer.toml: accounts[0] (home): namespaces, max_bytes_per_second do not apply "
        "to a pop3 account (a maildrop is one INBOX, downloaded whole); remove them"
    )
