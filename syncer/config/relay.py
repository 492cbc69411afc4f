"""The relay sections of the configuration: ``[[digests]]``, ``[[forwards]]`` and ``[outbox]``.

Why a module of its own: digests and forwards are a feature with their own
vocabulary (periods, rules, modes, attempts); the root model in
:mod:`syncer.config.schema` only lists the sections, and checks that each names a
configured ``[[smtp]]`` server (checked by :mod:`syncer.config.schema`).

* A digest (``[[digests]]``) is a summary of the messages archived since its
  previous run that match ``query``, sent on its cron ``schedule``.
* A forward (``[[forwards]]``) sends each newly archived message matching
  ``query`` to ``to``, either wrapped (``mode = "attach"``, a new message with
  the original attached) or as it is (``"redirect"``, Resent-* headers added).
* ``[outbox]`` says how often queued mail is sent and how failures are retried.

Addresses are checked here (one address each, no line breaks), so nothing from
the file can smuggle a header into a message.
"""

from __future__ import annotations

import functools
from email.utils import parseaddr
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from syncer.config.base import NAMED, Duration, Strict, check_cron

if TYPE_CHECKING:
    from datetime import datetime

    from jinja2.sandbox import SandboxedEnvironment


__all__ = [
    "DigestConfig",
    "Digests",
    "ForwardConfig",
    "Forwards",
    "OutboxConfig",
    "address_of",
]

#: Names end up in idempotency keys (255 characters with a SHA-256) and job ids.
_NAME = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
DEFAULT_SUBJECT = "{{ name }}: {{ count }} new message{{ 's' if count != 1 }}"


def _one_address(value: str) -> str:
    if any(ch in value for ch in "\r\n\x00"):
        raise ValueError("an address must not contain a line break")
    _name, addr = parseaddr(value)
    local, at, domain = addr.rpartition("@")
    if not (local and at and domain) or any(ch.isspace() for ch in addr):
        raise ValueError(
            f'{value!r} is not one e-mail address; expected e.g. "me@example.com" or '
            '"Syncer <me@example.com>"'
        )
    return value


def _listed(value: object) -> object:
    return [value] if isinstance(value, str) else value


Address = Annotated[str, AfterValidator(_one_address)]
#: One address or a list of them; at least one.
Recipients = Annotated[list[Address], BeforeValidator(_listed), Field(min_length=1)]


def address_of(value: str) -> str:
    """The bare address (``me@example.com``) of ``"Name <me@example.com>"``."""
    return parseaddr(value)[1]


def _check_query(text: str) -> str:
    """Parse ``text`` with the search language, so a typo is a configuration error."""
    from syncer.query import QuerySyntaxError, parse

    try:
        parse(text)
    except QuerySyntaxError as exc:
        first = exc.message.splitlines()[0] if exc.message else "not a valid query"
        raise ValueError(f"query {text!r} is not valid: {first}") from None
    return text


class _Outgoing(Strict):
    """What digests and forwards share: which server, from whom, to whom."""

    name: str = _NAME
    query: Annotated[str, AfterValidator(_check_query)] = ""
    smtp: str = Field(min_length=1)
    from_: Address = Field(alias="from")
    # Where bounces go (MAIL FROM); default: the address of `from`.
    envelope_from: Address | None = None
    to: Recipients

    @property
    def sender(self) -> str:
        """The envelope sender (MAIL FROM)."""
        return address_of(self.envelope_from or self.from_)


class DigestConfig(_Outgoing):
    """One ``[[digests]]`` table: a summary of what was archived since the previous run."""

    # A five-field cron expression: when `syncer run` sends it.
    schedule: str
    # A Jinja2 template; sees name, count, shown, since, until.
    subject: str = DEFAULT_SUBJECT
    # Messages listed; the rest are counted ("and 12 more").
    max_items: int = Field(default=50, ge=1, le=10_000)
    # Send a digest saying "nothing new" when the period had no matching message.
    send_empty: bool = False

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        check_cron(value)
        return value

    @field_validator("subject")
    @classmethod
    def _template(cls, value: str) -> str:
        if value == DEFAULT_SUBJECT or not any(mark in value for mark in ("{{", "{%", "{#")):
            return value  # nothing to check: spares every command the Jinja2 import
        from jinja2 import TemplateSyntaxError

        try:
            subject_environment().from_string(value)
        except TemplateSyntaxError as exc:
            raise ValueError(f"subject is not a valid template: {exc.message}") from None
        return value


class ForwardConfig(_Outgoing):
    """One ``[[forwards]]`` rule: each newly archived message matching ``query`` is sent on."""

    # attach: a new message from `from` with the original attached (message/rfc822);
    # redirect: the original as it is, with Resent-From/To/Date/Message-ID added.
    mode: Literal["attach", "redirect"] = "attach"


class OutboxConfig(Strict):
    """``[outbox]``: how queued mail is sent and retried."""

    # How often `syncer run` applies the forward rules and sends what is queued.
    flush_every: Duration = Field(default=60.0, gt=0)
    # Attempts before a message that keeps failing for now (4xx, no connection) fails.
    max_attempts: int = Field(default=8, ge=1, le=100)
    # The wait after the first failed attempt; it doubles with each attempt ...
    retry_first: Duration = Field(default=60.0, gt=0)
    # ... up to this.
    retry_max: Duration = Field(default=6 * 3600.0, gt=0)
    # How long a sent message's body stays in the outbox (for `syncer outbox list` and
    # inspection); after that only the row remains, whose key stops it being queued again.
    keep_sent: Duration = Field(default=30 * 86400.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> OutboxConfig:
        if self.retry_max < self.retry_first:
            raise ValueError(
                f"retry_max ({self.retry_max:g}s) is shorter than retry_first "
                f"({self.retry_first:g}s); the wait only grows"
            )
        return self

    def delay(self, attempts: int) -> float:
        """Seconds to wait after ``attempts`` failed attempts (exponential, capped)."""
        return float(min(self.retry_first * 2 ** max(attempts - 1, 0), self.retry_max))


Digests = Annotated[list[DigestConfig], NAMED]
Forwards = Annotated[list[ForwardConfig], NAMED]


def when_filter(value: datetime | None) -> str:
    """The ``when`` filter of digest templates: a UTC date and time, or ``(no date)``."""
    from datetime import UTC

    if value is None:
        return "(no date)"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@functools.cache
def subject_environment() -> SandboxedEnvironment:
    """The sandbox a digest's ``subject`` template runs in.

    Lives with the configuration because ``config check`` compiles each subject template
    (a wrong filter name is a configuration error), and the renderer reuses it.
    """
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)
    env.filters["when"] = when_filter
    return env
