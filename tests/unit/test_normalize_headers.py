"""Header fields: Message-IDs, dates, addresses by role, lists and bulk markers, threads."""

from __future__ import annotations

from datetime import UTC, datetime

from syncer.mime.normalize import normalize
from tests.mail_samples import mail


def test_a_date_is_stored_in_utc_with_the_raw_header_kept() -> None:
    result = normalize(mail("01-plain-ascii"))
    assert result.date == datetime(2024, 12, 2, 9, 15, tzinfo=UTC)
    assert (result.date_raw, result.date_status) == ("Mon, 02 Dec 2024 10:15:00 +0100", "ok")


def test_a_missing_date_is_recorded_as_missing_not_guessed() -> None:
    result = normalize(mail("55-missing-date"))
    assert (result.date, result.date_raw, result.date_status) == (None, None, "missing")


def test_an_invalid_date_is_recorded_as_invalid_with_what_was_there() -> None:
    result = normalize(mail("56-invalid-date"))
    assert (result.date, result.date_status) == (None, "invalid")
    assert result.date_raw == "sometime next week, probably"


def test_a_date_without_zone_is_utc_and_iso_dates_are_nonstandard() -> None:
    assert normalize(mail("57-date-minus-0000-and-iso")).date == datetime(
        2024, 12, 2, 10, 15, tzinfo=UTC
    )
    iso = normalize(mail("58-date-iso8601"))
    assert (iso.date, iso.date_status) == (datetime(2024, 12, 2, 9, 15, tzinfo=UTC), "nonstandard")


def test_obsolete_dates_with_two_digit_years_and_named_zones() -> None:
    result = normalize(mail("24-no-mime-version-no-content-type"))
    assert result.date == datetime(1994, 12, 2, 15, 15, tzinfo=UTC)


def test_duplicate_headers_use_the_first_and_two_froms_are_suspicious() -> None:
    result = normalize(mail("59-duplicate-headers"))
    assert result.subject == "First subject"
    assert result.date == datetime(2024, 12, 2, 9, 15, tzinfo=UTC)
    assert [a.address for a in result.by_role("from")] == [
        "alice@example.com",
        "mallory@evil.example",
    ]
    assert [a.address for a in result.by_role("to")] == ["bob@example.org", "carol@example.net"]
    assert result.suspicious and "2 From headers" in result.risk


def test_addresses_by_role_with_groups_comments_and_unquoted_commas() -> None:
    result = normalize(mail("61-address-forms"))
    shown = {
        role: [str(a) for a in result.by_role(role)]
        for role in ("from", "sender", "reply-to", "to", "cc", "bcc", "delivered-to")
    }
    assert shown == {
        "from": ["Doe, Jane <Jane.Doe@example.com>"],
        "sender": ["Secretary <secretary@example.com>"],
        "reply-to": ["Doe, John <john@example.com>"],
        "to": [],
        "cc": ["ann@example.com", "ben@example.com", "René <rene@example.fr>"],
        "bcc": ["Archive copy <archive@example.com>"],
        "delivered-to": ["bob@example.org", "bob+archive@example.org"],
    }
    assert [a.position for a in result.by_role("cc")] == [0, 1, 2]
    assert result.sender == "Doe, Jane <Jane.Doe@example.com>"


def test_domains_are_lower_cased_ascii_and_idna_is_decoded_for_display() -> None:
    result = normalize(mail("62-idna-domains"))
    sender, to, cc = result.by_role("from")[0], result.by_role("to")[0], result.by_role("cc")[0]
    assert (sender.address, sender.domain) == ("info@xn--bcherei-n2a.example", "bücherei.example")
    assert (to.address, to.domain, to.display_name) == (
        "Mueller@xn--mller-kva.example",
        "müller.example",
        "Müller",
    )
    assert str(to) == "Müller <Mueller@müller.example>"
    assert (cc.address, cc.domain) == ("raw@xn--mller-kva.example", "müller.example")


def test_list_id_and_bulk_markers() -> None:
    listed = normalize(mail("63-list-and-bulk"))
    assert (listed.list_id, listed.precedence, listed.auto_submitted) == (
        "python-dev.python.example",
        "bulk",
        None,
    )
    vacation = normalize(mail("64-vacation-auto-reply"))
    assert (vacation.auto_submitted, vacation.precedence) == ("auto-replied", "auto_reply")


def test_message_ids_and_references() -> None:
    result = normalize(mail("72-thread-reply-to-reply"))
    assert result.message_id == "<72@corpus.example>"
    assert result.in_reply_to == "<71@corpus.example>"
    assert result.references == ("<70@corpus.example>", "<71@corpus.example>")


def test_replies_share_the_thread_key_of_their_root() -> None:
    keys = {
        n: normalize(mail(n)).thread_key
        for n in ("70-thread-root", "71-thread-reply", "72-thread-reply-to-reply")
    }
    assert len(set(keys.values())) == 1


def test_a_reply_whose_parent_is_missing_still_gets_a_stable_thread() -> None:
    orphan = normalize(mail("74-orphan-reply"))
    sibling = normalize(mail("75-orphan-sibling"))
    assert orphan.thread_key == sibling.thread_key == normalize(mail("74-orphan-reply")).thread_key
    assert orphan.thread_key != normalize(mail("70-thread-root")).thread_key


def test_a_message_without_any_id_is_a_thread_of_its_own() -> None:
    result = normalize(mail("60-missing-message-id"))
    assert result.message_id is None and result.thread_key


def test_folded_headers_are_unfolded() -> None:
    subject = normalize(mail("65-long-folded-header")).subject
    assert subject is not None and subject.startswith("word0 word1") and "word119" in subject
    assert "  " not in subject
