"""Provider presets and limits (issue 21): pure parts, no server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from syncer.archive.store_transfer import Placement
from syncer.config.providers import GMAIL_BYTES_PER_DAY
from syncer.config.schema import AccountConfig
from syncer.errors import SourceThrottled
from syncer.sources.imap.connection import CommandFailed
from syncer.sources.imap.errors import IMAPWording, provider_limit
from syncer.sources.imap.parser import Completion
from syncer.sources.wording import ErrorContext
from syncer.transfer.labels import LABEL_FOLDER, label_placements, one_per_message


@pytest.mark.parametrize(
    ("answer", "limit", "minutes"),
    [
        ("NO [THROTTLED] Account exceeded command or bandwidth limits.", "THROTTLED", 10),
        ("NO [OVERQUOTA] Account exceeded command or bandwidth limits.", "OVERQUOTA", 60),
        ("NO Request is throttled. Suggested Backoff Time: 92415 milliseconds", "microsoft", 2),
        ("BAD Request is throttled. Suggested Backoff Time: 1000 milliseconds", "microsoft", 1),
        ("NO [UNAVAILABLE] Server Unavailable. 15", "UNAVAILABLE", 5),
    ],
)
def test_provider_limits_are_recognised(answer: str, limit: str, minutes: int) -> None:
    found = provider_limit(answer)
    assert found is not None
    assert (found[0], found[1] / 60) == (limit, minutes)


def test_ordinary_refusals_are_not_limits() -> None:
    assert provider_limit("NO [NONEXISTENT] Mailbox doesn't exist: x") is None
    assert provider_limit("BAD Error in IMAP command UID FETCH: Invalid arguments.") is None


def test_a_throttled_fetch_becomes_source_throttled() -> None:
    ctx = ErrorContext("gmail", "gmail", "imap.gmail.com", 993, 60.0, lambda: None)
    completion = Completion(
        "NO", "THROTTLED", None, "Account exceeded command or bandwidth limits."
    )
    error = IMAPWording(ctx, "[Gmail]/All Mail").refused(CommandFailed("UID FETCH", completion))
    assert isinstance(error, SourceThrottled) and error.transient
    assert (error.limit, error.retry_after, error.folder) == (
        "THROTTLED",
        600.0,
        "[Gmail]/All Mail",
    )
    assert "[THROTTLED]" in error.message and "resumes in 10 min" in (error.hint or "")


def _account(**keys: Any) -> AccountConfig:
    keys.setdefault("password_env", "X")
    return AccountConfig(name="a", username="me@example.com", **keys)


def test_gmail_preset_fills_what_is_left_out() -> None:
    account = _account(provider="gmail")
    assert (account.host, account.port, account.security) == ("imap.gmail.com", 993, "tls")
    assert account.max_bytes_per_day == GMAIL_BYTES_PER_DAY < 2_500_000_000
    assert "\\Junk" in account.folders.exclude_special_use
    assert "\\Trash" in account.folders.exclude_special_use
    assert account.batch_messages == 200


def test_explicit_keys_win_over_the_preset() -> None:
    account = _account(
        provider="gmail", host="127.0.0.1", max_bytes_per_day=10_000, folders={"exclude": ["X"]}
    )
    assert (account.host, account.max_bytes_per_day) == ("127.0.0.1", 10_000)
    assert account.folders.exclude == ["X"] and account.folders.exclude_special_use


def test_microsoft_preset_and_oauth2_provider() -> None:
    account = _account(
        provider="microsoft",
        auth="oauth2",
        password_env=None,
        oauth2={"client_id": "c"},
    )
    assert account.host == "outlook.office365.com"
    assert account.oauth2 is not None and account.oauth2.provider == "microsoft"
    assert account.folders.exclude_special_use == ["\\Junk"]
    assert account.max_bytes_per_day is None


def _placement(
    pk: int, folder: str, labels: tuple[str, ...] | None, use: str | None = None
) -> Placement:
    return Placement(
        message_pk=pk,
        sha256=f"{pk:064x}",
        size=1,
        message_id=None,
        header_sha256=None,
        subject=None,
        date=None,
        account="g",
        folder=folder,
        display_name=folder,
        delimiter="/",
        special_use=use,
        namespace="personal",
        flags=("\\Seen",),
        internaldate=datetime(2024, 1, 1, tzinfo=UTC),
        gone=False,
        labels=labels,
    )


def test_labels_become_one_folder_each() -> None:
    placements = [
        _placement(1, "[Gmail]/All Mail", ("Travel", "Work"), "\\All"),
        _placement(1, "Work", ("Travel", "Work")),
        _placement(1, "Travel", ("Travel", "Work")),
        _placement(2, "[Gmail]/All Mail", (), "\\All"),
        _placement(3, "INBOX", None),
        _placement(4, "[Gmail]/All Mail", ("\\Inbox", "\\Important"), "\\All"),
    ]
    out = [(p.message_pk, p.folder, p.display_name) for p in label_placements(placements)]
    assert out == [
        (1, LABEL_FOLDER + "Travel", "Travel"),
        (1, LABEL_FOLDER + "Work", "Work"),
        (2, "[Gmail]/All Mail", "[Gmail]/All Mail"),  # no label: stays in All Mail
        (3, "INBOX", "INBOX"),  # not Gmail: unchanged
        (4, LABEL_FOLDER + "\\Inbox", "INBOX"),  # \\Important is no folder
    ]
    once = [(p.message_pk, p.folder) for p in one_per_message(placements)]
    assert once == [
        (1, "[Gmail]/All Mail"),
        (2, "[Gmail]/All Mail"),
        (3, "INBOX"),
        (4, "[Gmail]/All Mail"),
    ]
