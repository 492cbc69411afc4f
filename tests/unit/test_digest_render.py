"""Digest rendering: items by archive id, HTML escaped, the subject one safe line."""

from __future__ import annotations

import email
from datetime import UTC, datetime

import pytest

from syncer.errors import ConfigError
from syncer.relay.render import DigestContent, DigestItem, digest_message, render_digest

NOW = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)


def content(*items: DigestItem, count: int | None = None) -> DigestContent:
    return DigestContent(
        name="morning",
        query="from:boss",
        count=len(items) if count is None else count,
        items=items,
        since=None,
        until=NOW,
    )


def test_markup_from_mail_is_text_in_both_parts() -> None:
    item = DigestItem(7, NOW, '"<img src=x onerror=alert(1)>" <e@x.org>', "<b>hi</b> & bye")
    rendered = render_digest(content(item), subject="{{ name }}")
    assert "<b>hi</b> & bye" in rendered.text
    assert "&lt;b&gt;hi&lt;/b&gt; &amp; bye" in rendered.html
    assert "<img" not in rendered.html and "<b>hi" not in rendered.html
    assert "syncer show 7" in rendered.text and "syncer show 7" in rendered.html


def test_the_subject_template_gives_one_line_whatever_it_renders() -> None:
    rendered = render_digest(content(count=3), subject="{{ name }}\nBcc: x@y {{ count }}")
    assert rendered.subject == "morning Bcc: x@y 3"
    message = email.message_from_bytes(
        digest_message(
            rendered, name="morning", sender="s@example.com", to=["t@e.net"], now=NOW
        ).data
    )
    assert message["Bcc"] is None and message["Subject"] == "morning Bcc: x@y 3"


def test_a_subject_naming_an_unknown_value_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"digests \(morning\)\.subject"):
        render_digest(content(), subject="{{ nmae }}")


def test_the_subject_template_runs_in_a_sandbox() -> None:
    with pytest.raises(ConfigError):
        render_digest(content(), subject="{{ name.__class__.__mro__ }}")
