"""MAILBOXID handling (issue 20 #1): Cyrus 3.6 sends garbage for MAILBOXID asked together
with counters, so syncer asks it alone, keeps only RFC 8474 object ids, and turns one
malformed STATUS line into a warning for that folder."""

from __future__ import annotations

import pytest
import structlog

from syncer.sources.imap.listing import (
    ListCollector,
    ListEntry,
    folder_status,
    mailbox_id_command,
    status_items,
    valid_object_id,
)
from syncer.sources.imap.parser import Response


def test_status_items_never_ask_mailboxid_next_to_counters() -> None:
    items = status_items(frozenset({"OBJECTID", "CONDSTORE"}))
    assert b"MAILBOXID" not in items
    assert b"HIGHESTMODSEQ" in items
    assert b"".join(mailbox_id_command("INBOX.a b")) == b'STATUS "INBOX.a b" (MAILBOXID)'


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("F2212ea87", True),
        ("6n285rv9qw6o9bkf7vkpwaeg", True),
        ("a_b-c", True),
        ("x" * 255, True),
        ("x" * 256, False),
        ("", False),
        ("\rG\xec\xd8'V", False),
        ("a b", False),
        ("a)", False),
        (42, False),
        (None, False),
    ],
)
def test_object_ids_follow_rfc_8474(value: object, valid: bool) -> None:
    assert (valid_object_id(value) is not None) is valid


def test_a_garbage_mailbox_id_is_not_stored() -> None:
    entry = ListEntry(raw_name=b"Box", delimiter="/", attributes=())
    status = folder_status(entry, "personal", "Box", {"UIDVALIDITY": 1, "MAILBOXID": "{\xc1)"})
    assert status.mailbox_id is None
    assert status.uidvalidity == 1


def test_one_malformed_status_line_is_a_warning_not_the_end() -> None:
    collector = ListCollector()
    garbage = b"* STATUS INBOX (MESSAGES 12 MAILBOXID (\rG\xec\xd8'V) HIGHESTMODSEQ 23)"
    with structlog.testing.capture_logs() as logs:
        collector(Response(garbage, []))
        collector(Response(b"* STATUS Other (MESSAGES 3 UIDNEXT 4)", []))
    assert collector.statuses == {b"Other": {"MESSAGES": 3, "UIDNEXT": 4}}
    assert [e["event"] for e in logs] == ["imap.status.malformed"]
