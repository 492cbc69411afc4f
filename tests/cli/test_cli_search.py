"""`syncer search QUERY`: a table or JSON of hits, a count, paging, and positioned query errors.

The archive is SQLite here (the CLI is backend-agnostic; what each term selects
on both backends is tests/integration/test_search_query.py).
"""

from __future__ import annotations

import hashlib

import click
import pytest

from syncer.archive.search.store import SORTS
from syncer.archive.store import ArchiveStore
from syncer.cli.search import search as search_command
from syncer.model import RemoteMessage
from tests.cli.conftest import Syncer
from tests.mail_samples import mail

SAMPLES = ["01-plain-ascii", "08-rfc2231-filename", "30-euc-kr-rfc2047", "70-thread-root"]


@pytest.fixture
def search_cli(syncer_cli: Syncer) -> Syncer:
    """An archive of four normalized corpus messages, in INBOX and Archive."""
    assert syncer_cli("init").exit_code == 0
    with ArchiveStore.open(f"sqlite:///{syncer_cli.tmp_path}/archive.db") as store:
        store.ensure_account("work", "imap")
        for folder in ("INBOX", "Archive"):
            batch = [
                RemoteMessage(folder=folder, uid=i + 1, raw=mail(name), flags=("\\Seen",))
                for i, name in enumerate(SAMPLES)
                if folder == "INBOX" or name == "70-thread-root"
            ]
            store.archive_batch("work", folder, 1, batch, None)
    assert syncer_cli.json("normalize")["failed"] == 0
    return syncer_cli


def _sha(name: str) -> str:
    return hashlib.sha256(mail(name)).hexdigest()


def test_json_gives_one_object_per_message_with_its_folders(search_cli: Syncer) -> None:
    hits = search_cli.json("search", "from:alice@example.com")
    assert sorted(hit["sha256"] for hit in hits) == sorted(
        _sha(n) for n in ("01-plain-ascii", "08-rfc2231-filename", "70-thread-root")
    )
    root = next(hit for hit in hits if hit["sha256"] == _sha("70-thread-root"))
    assert set(root) == {"id", "sha256", "folders", "date", "from", "subject", "size", "snippet"}
    assert root["folders"] == ["Archive", "INBOX"]
    assert root["date"] == "2024-12-02T09:15:00+00:00"
    assert root["from"] == "Alice Example <alice@example.com>"
    assert root["subject"] == "Thread root"
    assert root["size"] == len(mail("70-thread-root"))
    assert root["snippet"] == "Root."


def test_the_table_shows_id_date_sender_subject_folders_and_size(search_cli: Syncer) -> None:
    result = search_cli("search", "has:attachment")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["id", "date", "(UTC)", "from", "subject", "folder", "size"]
    assert len(lines) == 2
    assert "2024-12-02 09:15" in lines[1] and "RFC 2231 names" in lines[1]
    assert "Alice Example" in lines[1] and "INBOX" in lines[1] and "1.9 KB" in lines[1]


def test_no_match_says_so(search_cli: Syncer) -> None:
    result = search_cli("search", "from:nobody")
    assert (result.exit_code, result.stdout) == (0, "No messages match.\n")
    assert search_cli.json("search", "from:nobody") == []


def test_count_limit_offset_and_sort(search_cli: Syncer) -> None:
    assert search_cli("search", "", "--count").stdout == "4\n"
    assert search_cli.json("search", "folder:archive", "--count") == {"count": 1}
    by_size = [hit["size"] for hit in search_cli.json("search", "", "--sort", "size")]
    assert by_size == sorted(len(mail(n)) for n in SAMPLES)
    largest_first = search_cli.json(
        "search", "", "--sort", "-size", "--limit", "2", "--offset", "1"
    )
    assert [hit["size"] for hit in largest_first] == sorted(by_size, reverse=True)[1:3]
    assert search_cli("search", "", "--sort", "biggest").exit_code == 2


def test_the_cli_offers_every_sort_the_store_knows() -> None:
    (sort,) = [p for p in search_command.params if p.name == "sort"]
    assert isinstance(sort.type, click.Choice)
    assert tuple(sort.type.choices) == SORTS


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "from:alice (invoice",
            "Error: Malformed query at column 12: this '(' is never closed (add a ')')\n"
            "  from:alice (invoice\n"
            "             ^\n",
        ),
        (
            "larger:5X",
            "Error: Malformed query at column 8: '5X' is not a size: write bytes (2048) or "
            "10k, 5M, 1G\n  larger:5X\n         ^\n",
        ),
    ],
)
def test_a_malformed_query_exits_2_with_a_caret_and_no_traceback(
    search_cli: Syncer, query: str, expected: str
) -> None:
    result = search_cli("search", query)
    assert result.exit_code == 2
    assert result.stderr == expected
    assert result.stdout == ""


def test_an_unknown_field_lists_the_known_ones(syncer_cli: Syncer) -> None:
    result = syncer_cli("search", "sender:alice")
    assert result.exit_code == 2
    first = result.stderr.splitlines()[0]
    assert first.startswith("Error: Malformed query at column 1: unknown field 'sender:' (known")
    assert "from:, to:, cc:, subject:" in first and "Traceback" not in result.output


def test_long_queries_and_huge_pages_are_usage_errors(syncer_cli: Syncer) -> None:
    # Issue 16 (Low): 1,600 ORed words gave "Expression tree is too large" as an archive
    # error (exit 1) on SQLite, and --limit 10**20 an OverflowError.
    syncer_cli("init")
    words = " OR ".join(f"w{n}" for n in range(1600))[:9_000]
    long = syncer_cli("search", words)
    assert long.exit_code == 2 and "more than 200 terms" in long.output
    senders = " OR ".join(f"from:a{n}@x.org" for n in range(201))
    assert syncer_cli("search", senders).exit_code == 2
    assert syncer_cli("search", " OR ".join(f"w{n}" for n in range(200))).exit_code == 0
    for option in ("--limit", "--offset"):
        huge = syncer_cli("search", "x", option, str(10**20))
        assert huge.exit_code == 2 and "Invalid value" in huge.output


def test_unquoted_words_and_the_pipe_formats(search_cli: Syncer) -> None:
    wanted = sorted(_sha(n) for n in ("01-plain-ascii", "08-rfc2231-filename", "70-thread-root"))
    quoted = search_cli("search", "from:alice@example.com", "--output", "sha256")
    words = search_cli("search", "from:alice@example.com", "-folder:Nowhere", "--output", "sha256")
    assert sorted(quoted.stdout.split()) == sorted(words.stdout.split()) == wanted
    text0 = search_cli("search", "from:alice@example.com", "--output", "ids", "--format", "text0")
    ids = text0.stdout.split("\0")
    assert ids[-1] == "" and len(ids) == 4 and all(i.isdigit() for i in ids[:-1])
    jsonl = search_cli("search", "from:alice@example.com", "--format", "jsonl")
    import json

    assert sorted(json.loads(line)["sha256"] for line in jsonl.stdout.splitlines()) == wanted
