"""The four real IMAP servers of the suite start, take logins over IMAPS and keep bytes.

What each offers is asserted here too, because the sync tests' expectations (and
docs/servers.md) rest on it: Cyrus advertises OBJECTID, CONDSTORE and QRESYNC; Courier
none of them and no UNSELECT; Debian's Cyrus and Courier put personal folders under
``INBOX.`` with ``.``, upstream Cyrus and Dovecot at the top with ``/``.
"""

from __future__ import annotations

import pytest

from tests.fixtures_servers import AnyServer
from tests.servers.dovecot import MailUser

pytestmark = pytest.mark.integration

NAMESPACES = {
    "dovecot": ("", "/"),
    "cyrus-debian": ("INBOX.", "."),
    "cyrus-upstream": ("", "/"),
    "courier": ("INBOX.", "."),
}
HAS = {
    "dovecot": {"CONDSTORE", "QRESYNC", "LIST-STATUS", "UNSELECT"},
    "cyrus-debian": {"CONDSTORE", "QRESYNC", "LIST-STATUS", "OBJECTID", "UNSELECT"},
    "cyrus-upstream": {"CONDSTORE", "QRESYNC", "LIST-STATUS", "OBJECTID", "UNSELECT"},
    "courier": {"UIDPLUS", "NAMESPACE"},
}
LACKS = {
    "dovecot": {"OBJECTID"},
    "cyrus-debian": set(),
    "cyrus-upstream": set(),
    "courier": {"CONDSTORE", "QRESYNC", "LIST-STATUS", "OBJECTID", "UNSELECT", "MOVE"},
}


def _server_id(request: pytest.FixtureRequest) -> str:
    return str(request.node.callspec.params["any_server"])


def test_namespace_and_capabilities_are_as_documented(
    any_server: AnyServer, any_user: MailUser, request: pytest.FixtureRequest
) -> None:
    name = _server_id(request)
    client = any_server.imap_client(any_user.name, "tls")
    try:
        personal = client.namespace().personal[0]
        caps = {c.decode() for c in client.capabilities()}
    finally:
        client.logout()
    assert (personal[0], personal[1]) == NAMESPACES[name]
    assert HAS[name] <= caps
    assert not LACKS[name] & caps


def test_append_and_fetch_are_byte_exact_with_flags_in_a_nested_folder(
    any_server: AnyServer, any_user: MailUser
) -> None:
    raw = b"Subject: =?UTF-8?Q?=C3=9Cberweisung?=\r\nMessage-ID: <a@b>\r\n\r\nbody\r\n"
    uid = any_server.append(any_user.name, "Archive/2024 Q1", raw, ["\\Flagged", "custom"])
    assert any_server.fetch_raw(any_user.name, "Archive/2024 Q1", uid) == raw
    assert any_server.flags(any_user.name, "Archive/2024 Q1") == {
        uid: frozenset({"\\Flagged", "custom"})
    }
    wire = any_server.wire_name("Archive/2024 Q1")
    assert wire in any_server.folders(any_user.name)
    assert any_server.personal_name(wire) == "Archive/2024 Q1"


def test_uidvalidity_reset_keeps_messages_and_flags(
    any_server: AnyServer, any_user: MailUser
) -> None:
    for n in range(3):
        any_server.append(any_user.name, "Box", f"Subject: {n}\r\n\r\n{n}\r\n".encode(), ["\\Seen"])
    old = any_server.uidvalidity(any_user.name, "Box")
    new = any_server.reset_uidvalidity(any_user.name, "Box")
    assert new != old
    assert sorted(any_server.flags(any_user.name, "Box").values()) == [frozenset({"\\Seen"})] * 3
