"""The whole test corpus (tests/data/mail): every message normalizes, nothing is lost.

Each message is real-world-shaped (see tests/data/mail/make_corpus.py for what
each one is about); the feature tests (test_normalize_*.py) check what comes
out of them. Here: the files are exactly what the generator writes, there are
at least 60 of them, none raises, and every attachment the normalizer lists
can be extracted again with the SHA-256 it recorded.
"""

from __future__ import annotations

import hashlib

import pytest

from syncer.mime.normalize import attachment_content, normalize
from syncer.mime.parsed import NORMALIZER_VERSION
from tests.mail_samples import big_attachment_message, generator, mail, names


def test_the_corpus_files_are_exactly_what_the_generator_writes() -> None:
    built = generator().build_all()
    assert sorted(built) == names()
    for name, raw in built.items():
        assert mail(name) == raw, f"{name}.eml differs: run tests/data/mail/make_corpus.py"


def test_the_corpus_has_at_least_sixty_messages() -> None:
    assert len(names()) >= 60


@pytest.mark.parametrize("name", names())
def test_every_corpus_message_normalizes_and_its_attachments_extract(name: str) -> None:
    raw = mail(name)
    result = normalize(raw)
    assert result.version == NORMALIZER_VERSION
    assert result.status in ("ok", "partial", "failed")
    assert result.thread_key
    for attachment in result.attachments:
        content = attachment_content(raw, attachment.part_path)
        assert content is not None, attachment.part_path
        assert hashlib.sha256(content).hexdigest() == attachment.sha256
        assert len(content) == attachment.size
        assert "/" not in attachment.safe_filename and "\\" not in attachment.safe_filename


def test_a_20_mb_attachment_is_read_in_full() -> None:
    raw, sha = big_attachment_message()
    result = normalize(raw)
    assert result.status == "ok"
    assert result.text == "The scan is attached."
    (scan,) = result.attachments
    assert (scan.filename, scan.size, scan.sha256) == ("scan.pdf", 20 * 1024 * 1024, sha)
