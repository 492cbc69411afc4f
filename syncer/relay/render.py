"""Digest messages: what a digest lists, rendered into a text and an HTML part.

Why a module of its own: rendering is pure (items in, bytes out) and is where
untrusted text -- subjects and senders of archived mail -- meets HTML. The
templates are package data (``syncer/relay/templates/digest.txt`` and
``digest.html``) rendered by Jinja2 with autoescaping on for HTML, so a
subject such as ``<script>...</script>`` is shown as text, never run. The
plain-text part is not escaped (it is not markup). The subject line is the
digest's own template from the configuration, rendered in a sandbox, with
line breaks removed so nothing can be smuggled into the header block.

Every item is named by its archive id, with the command that shows it
(``syncer show 42``).

Public API: :class:`DigestItem` (defined by the archive, which reads it:
:mod:`syncer.archive.relay_views`), :class:`DigestContent`, :func:`render_digest`,
:func:`digest_message`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from syncer.archive.relay_views import DigestItem
from syncer.config.relay import subject_environment, when_filter
from syncer.errors import ConfigError
from syncer.relay.compose import Composed, new_message_id

if TYPE_CHECKING:
    from collections.abc import Sequence

    from jinja2 import Environment

__all__ = [
    "DigestContent",
    "DigestItem",
    "Rendered",
    "digest_message",
    "render_digest",
]


@dataclass(frozen=True, slots=True)
class DigestContent:
    """What one digest covers: ``count`` matching messages, the first ``items`` listed.

    :ivar since: the end of the previous period (None: the first digest).
    :ivar until: when this period was closed.
    """

    name: str
    query: str
    count: int
    items: tuple[DigestItem, ...]
    since: datetime | None
    until: datetime
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def more(self) -> int:
        return self.count - len(self.items)


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


@functools.cache
def _environment() -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("syncer.relay", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["when"] = when_filter
    return env


def render_digest(content: DigestContent, *, subject: str) -> Rendered:
    """The subject line, text part and HTML part of a digest.

    :param subject: the digest's subject template.
    :raises ConfigError: when the subject template uses a name it is not given.
    """
    from jinja2 import TemplateError

    context: dict[str, Any] = {
        "name": content.name,
        "query": content.query,
        "count": content.count,
        "items": content.items,
        "shown": len(content.items),
        "more": content.more,
        "since": content.since,
        "until": content.until,
        **content.extra,
    }
    try:
        line = subject_environment().from_string(subject).render(context)
    except TemplateError as exc:
        raise ConfigError(
            f"digests ({content.name}).subject: the template failed: {exc}.",
            hint="It may use: name, query, count, shown, more, since, until "
            "(and the filter `when`).",
        ) from None
    env = _environment()
    return Rendered(
        subject=" ".join(line.split()),  # one line: no header can be smuggled in
        text=env.get_template("digest.txt").render(context),
        html=env.get_template("digest.html").render(context),
    )


def digest_message(
    rendered: Rendered, *, name: str, sender: str, to: Sequence[str], now: datetime
) -> Composed:
    """The digest as a ``multipart/alternative`` message (text, then HTML)."""
    message = EmailMessage(policy=SMTP)
    message_id = new_message_id(sender)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message["X-Syncer-Digest"] = name
    message.set_content(rendered.text, subtype="plain", charset="utf-8")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8")
    return Composed(message.as_bytes(), message_id)
