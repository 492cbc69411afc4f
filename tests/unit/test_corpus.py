"""The benchmark corpus is deterministic, well-formed and shaped like docs/performance.md says.

Benchmarks compare syncer with its peers on the corpus from ``tests.corpus``;
if the generator drifted (other bytes for the same seed, another size mix,
malformed headers) every recorded ratio would silently stop being comparable.
These tests pin what the benchmark figures rely on, on 2,000 messages (about
130 MB, generated in well under a second).
"""

from __future__ import annotations

import email
import email.policy
import hashlib
from collections import Counter
from datetime import UTC
from email.parser import BytesParser

import pytest

from tests.corpus import KB, MB, CorpusMessage, describe, folder_names, generate

COUNT = 2000


@pytest.fixture(scope="module")
def corpus() -> list[CorpusMessage]:
    return list(generate(COUNT))


def _digest(messages: list[CorpusMessage]) -> str:
    h = hashlib.sha256()
    for m in messages:
        h.update(m.folder.encode())
        h.update(m.raw)
        h.update(repr((m.flags, m.internaldate)).encode())
    return h.hexdigest()


def test_same_seed_gives_same_bytes() -> None:
    first = list(generate(300, seed=7))
    again = list(generate(300, seed=7))
    assert first == again
    assert _digest(first) == _digest(again)
    other = list(generate(300, seed=8))
    assert _digest(other) != _digest(first)


def test_small_profile_is_deterministic_and_small() -> None:
    first = list(generate(300, seed=3, size_profile="small", folders="many"))
    assert first == list(generate(300, seed=3, size_profile="small", folders="many"))
    sizes = sorted(len(m.raw) for m in first)
    assert sizes[len(sizes) // 2] < 6 * KB
    assert sizes[-1] < 40 * KB


def test_size_distribution(corpus: list[CorpusMessage]) -> None:
    stats = describe(corpus)
    shares = stats["buckets"]
    assert isinstance(shares, dict)
    expected = [0.28, 0.311, 0.29, 0.02, 0.065, 0.015, 0.015, 0.004]
    for (bucket, got), want in zip(shares.items(), expected, strict=True):
        assert got == pytest.approx(want, abs=0.015), bucket
    percentiles = stats["percentiles"]
    assert isinstance(percentiles, dict)
    assert 7 * KB <= percentiles[50] <= 10 * KB
    # ~650 MB per 10,000 messages
    assert isinstance(stats["bytes"], int)
    assert 55 * KB <= stats["bytes"] / COUNT <= 75 * KB
    assert isinstance(stats["max"], int)
    assert 2 * MB < stats["max"] <= 3 * MB


def test_folder_and_flag_mix(corpus: list[CorpusMessage]) -> None:
    folders = Counter(m.folder for m in corpus)
    assert set(folders) == set(folder_names("standard"))
    for name, share in {"INBOX": 0.39, "Archive/2024": 0.36, "Sent": 0.20}.items():
        assert folders[name] / COUNT == pytest.approx(share, abs=0.04), name
    assert folders["Überweisungen"] / COUNT == pytest.approx(0.05, abs=0.02)
    flags = Counter(f for m in corpus for f in m.flags)
    assert flags["\\Seen"] / COUNT == pytest.approx(0.90, abs=0.03)
    assert flags["\\Flagged"] / COUNT == pytest.approx(0.05, abs=0.02)
    assert flags["\\Answered"] / COUNT == pytest.approx(0.08, abs=0.025)
    assert flags["$Forwarded"] / COUNT == pytest.approx(0.02, abs=0.015)
    assert all("\\Seen" in m.flags for m in corpus if m.folder == "Sent")
    # Archive/2024 holds 2024's mail only
    assert all(m.internaldate.year == 2024 for m in corpus if m.folder == "Archive/2024")


def test_many_folders_variant() -> None:
    names = folder_names("many")
    assert len(names) == len(set(names)) == 100
    assert set(folder_names("standard")) <= set(names)
    seen = Counter(m.folder for m in generate(3000, folders="many", size_profile="small"))
    assert set(seen) == set(names)  # every folder gets mail, even the rarest
    assert seen["INBOX"] == max(seen.values())


@pytest.mark.slow
def test_every_message_is_well_formed(corpus: list[CorpusMessage]) -> None:
    header_parser = BytesParser(policy=email.policy.default)
    message_ids: set[str] = set()
    replies = 0
    content_types: Counter[str] = Counter()
    for m in corpus:
        raw = m.raw
        crlf = raw.count(b"\r\n")
        assert raw.count(b"\n") == crlf, "bare LF"
        assert raw.count(b"\r") == crlf, "bare CR"
        assert max(map(len, raw.split(b"\r\n"))) <= 998, "line over 998 octets"
        assert m.internaldate.tzinfo is UTC and m.internaldate.microsecond == 0

        parsed = email.message_from_bytes(raw)
        for part in parsed.walk():
            assert not part.defects, (part.get_content_type(), part.defects)
            content_types[part.get_content_type()] += 1

        head_end = raw.index(b"\r\n\r\n") + 4
        headers = header_parser.parsebytes(raw[:head_end], headersonly=True)
        for name, value in headers.items():
            assert not value.defects, (name, value.defects)
        assert headers["Date"].datetime is not None
        assert headers["Subject"]

        message_id = str(headers["Message-ID"])
        assert message_id not in message_ids
        if "In-Reply-To" in headers:
            replies += 1
            # replies point at messages generated earlier
            assert str(headers["In-Reply-To"]) in message_ids
            assert str(headers["In-Reply-To"]) in str(headers["References"])
        message_ids.add(message_id)

    assert replies / COUNT == pytest.approx(0.35, abs=0.05)
    attachments = content_types["application/pdf"] + content_types["image/png"]
    assert content_types["multipart/mixed"] + content_types["multipart/related"] >= 0.08 * COUNT
    assert attachments >= 0.09 * COUNT
    assert content_types["multipart/alternative"] >= 0.2 * COUNT


def test_headers_use_rfc2047_in_several_languages(corpus: list[CorpusMessage]) -> None:
    charsets: Counter[str] = Counter()
    decoded_subjects: list[str] = []
    parser = BytesParser(policy=email.policy.default)
    for m in corpus[:600]:
        head = m.raw[: m.raw.index(b"\r\n\r\n") + 4]
        for token in (b"=?utf-8?", b"=?iso-8859-1?", b"=?euc-kr?", b"=?iso-2022-jp?"):
            if token in head:
                charsets[token.decode()] += 1
        decoded_subjects.append(str(parser.parsebytes(head, headersonly=True)["Subject"]))
    assert set(charsets) == {"=?utf-8?", "=?iso-8859-1?", "=?euc-kr?", "=?iso-2022-jp?"}
    text = "".join(decoded_subjects)
    assert any("\uac00" <= ch <= "\ud7a3" for ch in text), "no Korean subject"
    assert any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in text)
    assert any(ch in "äöüÄÖÜß" for ch in text), "no German subject"


@pytest.mark.slow
def test_bodies_decode(corpus: list[CorpusMessage]) -> None:
    """Text parts decode in their declared charset; attachments are valid base64."""
    for m in corpus[:400]:
        parsed = email.message_from_bytes(m.raw, policy=email.policy.default)
        for part in parsed.walk():
            if part.get_content_maintype() == "text":
                assert part.get_content()
            elif not part.is_multipart():
                payload = part.get_payload(decode=True)
                assert isinstance(payload, bytes) and payload
                assert payload.startswith((b"%PDF-", b"\x89PNG"))


def test_generation_is_streaming() -> None:
    stream = generate(10**9)
    first = next(stream)
    assert isinstance(first, CorpusMessage)
    stream.close()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"folders": "lots"}, "folders"), ({"size_profile": "huge"}, "size_profile")],
)
def test_bad_arguments(kwargs: dict[str, str], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        next(generate(1, **kwargs))  # type: ignore[arg-type]
