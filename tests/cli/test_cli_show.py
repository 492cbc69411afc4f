"""`syncer normalize` and `syncer show`: the normalized view, the exact raw bytes, one attachment.

`show --attachment N --out FILE` writes exactly FILE and nothing else: a file
name from the mail is never used as a path.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from syncer.archive.store import ArchiveStore
from syncer.model import RemoteMessage
from tests.cli.conftest import Syncer
from tests.mail_samples import big_attachment_message, mail, names


def _seed(cli: Syncer, raws: list[bytes]) -> None:
    assert cli("init").exit_code == 0
    with ArchiveStore.open(f"sqlite:///{cli.tmp_path}/archive.db") as store:
        store.ensure_account("work", "imap")
        store.archive_batch(
            "work",
            "INBOX",
            7,
            [
                RemoteMessage(folder="INBOX", uid=i + 1, raw=raw, flags=("\\Seen",))
                for i, raw in enumerate(raws)
            ],
            None,
        )


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def corpus_cli(syncer_cli: Syncer) -> Syncer:
    """An archive holding the whole test corpus, normalized."""
    _seed(syncer_cli, [mail(name) for name in names()])
    assert syncer_cli.json("status")["totals"]["awaiting_normalization"] == len(names())
    counts = syncer_cli.json("normalize")
    assert counts["processed"] == len(names()) and counts["failed"] == 0
    return syncer_cli


def _id(name: str) -> str:
    """How `syncer show` can name a corpus message: a SHA-256 prefix (ids follow hash order)."""
    return hashlib.sha256(mail(name)).hexdigest()[:12]


def test_show_raw_returns_the_identical_bytes_for_every_corpus_message(corpus_cli: Syncer) -> None:
    assert corpus_cli.json("status")["totals"]["awaiting_normalization"] == 0
    for name in names():
        result = corpus_cli("show", _id(name), "--raw")
        assert result.exit_code == 0, result.output
        assert result.stdout_bytes == mail(name), name


def test_show_prints_the_normalized_view(corpus_cli: Syncer) -> None:
    result = corpus_cli("show", _id("30-euc-kr-rfc2047"))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Subject:      한국어 제목입니다" in out
    assert "From:         김민준 <minjun.kim@hanbit.example>" in out
    assert "Date:         2024-12-02T09:15:00+00:00" in out
    assert "Folder:       work/INBOX uid" in out and "(\\Seen)" in out
    assert "안녕하세요. 회의 일정 확인 부탁드립니다." in out


def test_show_lists_attachments_auth_and_risk(corpus_cli: Syncer) -> None:
    out = corpus_cli("show", _id("04-nested-mixed-alternative-related")).stdout
    assert "Attachments:\n  1. logo.png  image/png  600 B  inline  part 1.2.2" in out
    assert "  2. report.pdf  application/pdf  2.9 KB  attachment  part 2" in out
    phishing = corpus_cli("show", _id("87-auth-results-fail-phishing")).stdout
    assert "Auth:         spf=fail dkim=none dmarc=fail" in phishing
    assert "Risk:         SUSPICIOUS: DMARC fail; SPF fail;" in phishing


def test_show_json_by_sha256_prefix(corpus_cli: Syncer) -> None:
    raw = mail("61-address-forms")
    view = corpus_cli.json("show", hashlib.sha256(raw).hexdigest()[:10])
    assert view["sha256"] == hashlib.sha256(raw).hexdigest()
    assert view["addresses"]["reply-to"] == [
        {"name": "Doe, John", "address": "john@example.com", "display": "john@example.com"}
    ]
    assert view["headers"]["message_id"] == "<61@corpus.example>"


def test_show_never_prints_control_characters_from_the_mail(syncer_cli: Syncer) -> None:
    _seed(syncer_cli, [b"Subject: =?utf-8?q?evil=1B]0;pwned=07title?=\r\n\r\nbody\x1b[2J\r\n"])
    syncer_cli("normalize")
    out = syncer_cli("show", "1").stdout
    assert "\x1b" not in out and "\x07" not in out
    assert "Subject:      evil ]0;pwned title" in out
    assert "body\\u001b[2J" in out


def test_attachment_out_writes_exactly_the_decoded_bytes_to_that_file(
    corpus_cli: Syncer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    before = _files(tmp_path)
    out = tmp_path / "saved.bin"
    view = corpus_cli.json("show", _id("10-unsafe-filenames"))
    passwd = view["attachments"][0]
    assert passwd["filename"] == "../../etc/passwd"

    result = corpus_cli("show", _id("10-unsafe-filenames"), "--attachment", "1", "--out", str(out))

    assert result.exit_code == 0, result.output
    assert hashlib.sha256(out.read_bytes()).hexdigest() == passwd["sha256"]
    assert _files(tmp_path) - before == {out}
    assert f"Wrote attachment 1 (64 bytes, application/octet-stream) to {out}." in result.stderr


def test_attachment_to_stdout_and_of_a_forwarded_message(corpus_cli: Syncer) -> None:
    result = corpus_cli("show", _id("06-forwarded-rfc822"), "--attachment", "2", "--out", "-")
    assert result.exit_code == 0
    view = corpus_cli.json("show", _id("06-forwarded-rfc822"))
    assert hashlib.sha256(result.stdout_bytes).hexdigest() == view["attachments"][1]["sha256"]
    assert view["attachments"][1]["filename"] == "data.bin"


def test_attachment_refuses_to_replace_a_file_unless_forced(
    corpus_cli: Syncer, tmp_path: Path
) -> None:
    out = tmp_path / "exists.pdf"
    out.write_bytes(b"mine")
    args = (
        "show",
        _id("04-nested-mixed-alternative-related"),
        "--attachment",
        "2",
        "--out",
        str(out),
    )
    refused = corpus_cli(*args)
    assert refused.exit_code == 2
    assert f"{out} exists; add --force to replace it." in refused.stderr
    assert out.read_bytes() == b"mine"
    assert corpus_cli(*args, "--force").exit_code == 0
    assert len(out.read_bytes()) == 3000


def test_show_errors_say_what_is_wrong(corpus_cli: Syncer, tmp_path: Path) -> None:
    missing = corpus_cli("show", "999")
    assert missing.exit_code == 1
    assert missing.stderr.strip() == "Error: No message with id 999 in the archive."
    short = corpus_cli("show", "abc")
    assert short.exit_code == 1
    assert "neither a message id nor a SHA-256 prefix of 8 or more hex digits" in short.stderr
    assert corpus_cli("show", "1", "--attachment", "1").exit_code == 2
    assert corpus_cli("show", "1", "--raw", "--attachment", "1", "--out", "x").exit_code == 2
    none = corpus_cli(
        "show", _id("01-plain-ascii"), "--attachment", "1", "--out", str(tmp_path / "x")
    )
    assert none.exit_code == 2
    assert "has 0 attachments; there is no attachment 1." in none.stderr
    assert not (tmp_path / "x").exists()


def test_show_before_normalization_says_so(syncer_cli: Syncer) -> None:
    _seed(syncer_cli, [mail("01-plain-ascii")])
    out = syncer_cli("show", "1").stdout
    assert "parse: pending" in out and "Not normalized yet: run `syncer normalize`." in out
    assert "Normalized 1 message (1 ok, 0 partial, 0 failed)" in syncer_cli("normalize").stdout
    human = syncer_cli("status").stdout
    assert "await normalization" not in human


def test_status_counts_messages_awaiting_normalization(syncer_cli: Syncer) -> None:
    _seed(syncer_cli, [mail("01-plain-ascii"), mail("02-multipart-alternative")])
    assert "2 messages await normalization (`syncer normalize`)" in syncer_cli("status").stdout
    syncer_cli("normalize")
    assert syncer_cli.json("status")["totals"]["awaiting_normalization"] == 0
    rebuilt = syncer_cli.json("normalize", "--rebuild", "--since", "2024-01-01")
    assert (rebuilt["marked"], rebuilt["processed"]) == (2, 2)


def test_a_20_mb_attachment_round_trips_through_the_archive(
    syncer_cli: Syncer, tmp_path: Path
) -> None:
    raw, sha = big_attachment_message()
    _seed(syncer_cli, [raw])
    assert syncer_cli.json("normalize")["ok"] == 1
    assert syncer_cli("show", "1", "--raw").stdout_bytes == raw
    out = tmp_path / "scan.pdf"
    assert syncer_cli("show", "1", "--attachment", "1", "--out", str(out)).exit_code == 0
    assert hashlib.sha256(out.read_bytes()).hexdigest() == sha


def test_normalize_json_counts(syncer_cli: Syncer) -> None:
    _seed(syncer_cli, [mail("21-deeply-nested"), mail("01-plain-ascii")])
    counts = syncer_cli.json("normalize", "--workers", "1")
    assert {k: counts[k] for k in ("processed", "ok", "partial", "failed", "workers")} == {
        "processed": 2,
        "ok": 1,
        "partial": 1,
        "failed": 0,
        "workers": 1,
    }
    assert json.dumps(counts)


def test_show_thread_lists_the_whole_thread_oldest_first(corpus_cli: Syncer) -> None:
    thread = corpus_cli.json("show", _id("72-thread-reply-to-reply"), "--thread")
    shas = [view["sha256"] for view in thread]
    expected = {hashlib.sha256(mail(n)).hexdigest() for n in ("70-thread-root", "71-thread-reply")}
    assert expected | {hashlib.sha256(mail("72-thread-reply-to-reply")).hexdigest()} <= set(shas)
    assert len({view["thread_key"] for view in thread}) == 1
    dates = [view["headers"]["date"] for view in thread if view["headers"]["date"]]
    assert dates == sorted(dates)
    human = corpus_cli("show", _id("70-thread-root"), "--thread")
    assert f"── 1 of {len(thread)} " in human.stdout


def test_show_attachments_dir_writes_every_attachment_under_safe_names(
    corpus_cli: Syncer, tmp_path: Path
) -> None:
    target = tmp_path / "out"
    before = _files(tmp_path)
    result = corpus_cli("show", _id("10-unsafe-filenames"), "--attachments-dir", str(target))
    assert result.exit_code == 0, result.output
    view = corpus_cli.json("show", _id("10-unsafe-filenames"))
    written = sorted(p.name for p in _files(target))
    assert len(written) == len(view["attachments"]) > 0
    assert all(name.startswith(f"{view['id']}-") for name in written)
    for number, item in enumerate(view["attachments"], 1):
        (path,) = target.glob(f"{view['id']}-{number}.*")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == item["sha256"]
    assert _files(tmp_path) - before == _files(target), "nothing written outside DIR"
