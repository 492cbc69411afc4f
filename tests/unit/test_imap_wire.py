"""Folder-listing and EXAMINE grammar of the IMAP adapter, on byte fixtures.

NAMESPACE, LIST, STATUS, (E)SEARCH and the untagged answers of
``EXAMINE ... (QRESYNC ...)`` as Dovecot (and a few stranger servers) send
them, and the rules that decide when a QRESYNC answer is trusted.
"""

from __future__ import annotations

import pytest

from syncer.model import FlagState
from syncer.sources.imap.listing import (
    Namespaces,
    display_name,
    matches_globs,
    parse_list,
    parse_namespace,
    parse_search,
    parse_status,
)
from syncer.sources.imap.parser import Response, ResponseError
from syncer.sources.imap.qresync import SelectReader


def r(text: bytes, *literals: bytes) -> Response:
    return Response(text, list(literals))


class TestNamespace:
    def test_dovecot(self) -> None:
        ns = parse_namespace(r(b'* NAMESPACE (("" "/")) (("shared/" "/")) (("Public/" "/"))'))
        assert ns.entries == (
            ("personal", "", "/"),
            ("other", "shared/", "/"),
            ("shared", "Public/", "/"),
        )

    def test_nil_parts_and_extensions(self) -> None:
        ns = parse_namespace(
            r(b'* NAMESPACE (("INBOX." "." "X-PARAM" ("FLAG1"))) NIL (("#pub/" NIL))')
        )
        assert ns.entries == (("personal", "INBOX.", "."), ("shared", "#pub/", None))

    def test_malformed(self) -> None:
        with pytest.raises(ResponseError):
            parse_namespace(r(b'* NAMESPACE (("" "/"))'))

    def test_classify_longest_prefix(self) -> None:
        ns = Namespaces(
            (("personal", "", "/"), ("other", "shared/", "/"), ("shared", "Public/", "/"))
        )
        assert ns.classify("INBOX") == "personal"
        assert ns.classify("Archive/2024") == "personal"
        assert ns.classify("shared/bob/Proj") == "other"
        assert ns.classify("shared") == "other"  # the namespace root itself
        assert ns.classify("Public/News") == "shared"
        assert ns.classify("sharedstuff") == "personal"

    def test_classify_inbox_prefix(self) -> None:
        ns = Namespaces((("personal", "INBOX.", "."), ("shared", "#public.", ".")))
        assert ns.classify("inbox") == "personal"
        assert ns.classify("INBOX.Sent") == "personal"
        assert ns.classify("#public.x") == "shared"


class TestList:
    def test_dovecot_special_use(self) -> None:
        entry = parse_list(r(b'* LIST (\\HasNoChildren \\Sent) "/" Sent'))
        assert (entry.name, entry.delimiter, entry.special_use, entry.selectable) == (
            "Sent",
            "/",
            "\\Sent",
            True,
        )

    @pytest.mark.parametrize("attr", [b"\\Noselect", b"\\NonExistent", b"\\NOSELECT"])
    def test_unselectable(self, attr: bytes) -> None:
        assert not parse_list(r(b"* LIST (" + attr + b') "/" shared')).selectable

    def test_modified_utf7_kept_on_the_wire(self) -> None:
        entry = parse_list(r(b'* LIST () "/" &ANw-berweisungen'))
        assert entry.name == "&ANw-berweisungen"
        assert display_name(entry.raw_name) == "Überweisungen"

    def test_quoted_numeric_and_literal_names(self) -> None:
        assert parse_list(r(b'* LIST () "/" "2024"')).name == "2024"
        assert parse_list(r(b'* LIST () "." "a \\"q\\" b"')).name == 'a "q" b'
        entry = parse_list(r(b'* LIST () "/" {7}', b'we"ird\\'))
        assert entry.raw_name == b'we"ird\\'

    def test_nil_delimiter_and_extended_data(self) -> None:
        entry = parse_list(r(b'* LIST (\\Subscribed) NIL Flat ("CHILDINFO" ("SUBSCRIBED"))'))
        assert (entry.name, entry.delimiter) == ("Flat", None)

    def test_lsub(self) -> None:
        assert parse_list(r(b'* LSUB () "/" INBOX')).name == "INBOX"

    def test_display_names(self) -> None:
        assert display_name(b"&ZeVnLIqe-") == "日本語"
        assert display_name(b"a&-b") == "a&b"
        # imapclient decodes malformed base64 leniently; the result is still a str.
        assert isinstance(display_name(b"caf&-broken&AAA"), str)

    def test_malformed(self) -> None:
        with pytest.raises(ResponseError):
            parse_list(r(b'* LIST "/" INBOX'))


class TestStatus:
    def test_dovecot(self) -> None:
        name, items = parse_status(
            r(b"* STATUS INBOX (MESSAGES 3 UIDNEXT 4 UIDVALIDITY 1795747156 HIGHESTMODSEQ 4)")
        )
        assert name == b"INBOX"
        assert items == {
            "MESSAGES": 3,
            "UIDNEXT": 4,
            "UIDVALIDITY": 1795747156,
            "HIGHESTMODSEQ": 4,
        }

    def test_mailboxid_and_quoted_name(self) -> None:
        name, items = parse_status(r(b'* STATUS "My Box" (MAILBOXID (F2212ea87) UIDNEXT 1)'))
        assert (name, items) == (b"My Box", {"MAILBOXID": "F2212ea87", "UIDNEXT": 1})

    def test_malformed(self) -> None:
        with pytest.raises(ResponseError):
            parse_status(r(b"* STATUS INBOX (MESSAGES)"))


class TestSearch:
    def test_plain(self) -> None:
        assert parse_search([r(b"* SEARCH 1 5 7"), r(b"* SEARCH")]) == {1, 5, 7}

    def test_modseq_trailer(self) -> None:
        assert parse_search([r(b"* SEARCH 2 3 (MODSEQ 917162500)")]) == {2, 3}

    def test_esearch(self) -> None:
        assert parse_search([r(b'* ESEARCH (TAG "t9") UID ALL 1:3,7')]) == {1, 2, 3, 7}
        assert parse_search([r(b'* ESEARCH (TAG "t18") UID')]) == set()

    def test_malformed(self) -> None:
        with pytest.raises(ResponseError):
            parse_search([r(b"* SEARCH 1 x")])


def test_globs() -> None:
    assert matches_globs("Archive/2024", ("Archive/*",), ())
    assert not matches_globs("Archive", ("Archive/*",), ())
    assert matches_globs("INBOX", (), ())
    assert not matches_globs("Trash", (), ("Trash",))
    assert not matches_globs("Archive/2024", ("*",), ("Archive/*",))  # exclude wins
    assert matches_globs("Überweisungen", ("Über*",), ())
    assert not matches_globs("inbox", ("INBOX",), ())  # case matters


# -- EXAMINE answers ------------------------------------------------------------------------

DOVECOT_EXAMINE = [
    b"* OK [CLOSED] Previous mailbox closed.",
    b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
    b"* OK [PERMANENTFLAGS ()] Read-only mailbox.",
    b"* 3 EXISTS",
    b"* 0 RECENT",
    b"* OK [UNSEEN 2] First unseen.",
    b"* OK [UIDVALIDITY 1795747156] UIDs valid",
    b"* OK [UIDNEXT 9] Predicted next UID",
    b"* OK [HIGHESTMODSEQ 12] Highest",
]


def examine(*extra: bytes) -> SelectReader:
    reader = SelectReader()
    for line in [*DOVECOT_EXAMINE, *extra]:
        reader.feed(r(line))
    return reader


class TestSelectReader:
    def test_plain(self) -> None:
        selected, distrust = examine().result("INBOX", qresync=None, condstore=True)
        assert distrust is None
        assert (selected.uidvalidity, selected.uidnext, selected.exists) == (1795747156, 9, 3)
        assert selected.highestmodseq == 12
        assert not selected.qresync

    def test_qresync_delta(self) -> None:
        reader = examine(
            b"* VANISHED (EARLIER) 1:2,5",
            b"* 2 FETCH (UID 7 FLAGS (\\Seen \\Recent) MODSEQ (11))",
            b"* 1 FETCH (UID 6 MODSEQ (12) FLAGS ())",
        )
        selected, distrust = reader.result("INBOX", qresync=(1795747156, 3), condstore=True)
        assert distrust is None and selected.qresync
        assert selected.vanished == frozenset({1, 2, 5})
        assert selected.changed == (
            FlagState(6, (), 12),
            FlagState(7, ("\\Seen",), 11),
        )

    def test_vanished_ranges_are_clipped_at_uidnext(self) -> None:
        reader = examine(b"* VANISHED (EARLIER) 3:4294967295")
        selected, _ = reader.result("INBOX", qresync=(1795747156, 3), condstore=True)
        assert selected.vanished == frozenset(range(3, 9))

    def test_uidvalidity_changed_means_no_delta(self) -> None:
        selected, distrust = examine().result("INBOX", qresync=(1, 3), condstore=True)
        assert distrust is None
        assert not selected.qresync and selected.highestmodseq == 12

    def test_highestmodseq_zero_is_distrusted(self) -> None:
        reader = examine(b"* OK [HIGHESTMODSEQ 0] Highest", b"* VANISHED (EARLIER) 1")
        selected, distrust = reader.result("INBOX", qresync=(1795747156, 3), condstore=True)
        assert distrust == "HIGHESTMODSEQ 0"
        assert selected.highestmodseq is None and not selected.qresync
        assert selected.vanished == frozenset() and selected.changed == ()

    @pytest.mark.parametrize(
        "bad",
        [
            b"* VANISHED (EARLIER) 1:*",
            b"* VANISHED (EARLIER) one",
            b"* 2 FETCH (FLAGS (\\Seen))",  # no UID
            b"* 2 FETCH (UID 7 FLAGS (\\Seen)",  # unbalanced
            b"* OK [HIGHESTMODSEQ x] Highest",
        ],
    )
    def test_malformed_answers_are_distrusted(self, bad: bytes) -> None:
        selected, distrust = examine(bad).result("INBOX", qresync=(1795747156, 3), condstore=True)
        assert distrust is not None
        assert selected.highestmodseq is None and not selected.qresync

    def test_nomodseq(self) -> None:
        reader = SelectReader()
        for line in (
            b"* 0 EXISTS",
            b"* OK [UIDVALIDITY 5] x",
            b"* OK [UIDNEXT 1] x",
            b"* OK [NOMODSEQ] Sorry, this mailbox format has no modseqs",
        ):
            reader.feed(r(line))
        selected, distrust = reader.result("X", qresync=(5, 1), condstore=True)
        assert distrust is None and selected.highestmodseq is None and not selected.qresync

    def test_without_uidvalidity(self) -> None:
        reader = SelectReader()
        reader.feed(r(b"* 0 EXISTS"))
        with pytest.raises(ResponseError):
            reader.result("X", qresync=None, condstore=False)
