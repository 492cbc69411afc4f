"""RFC 5322 bytes → :class:`~syncer.mime.parsed.NormalizedMessage`: pure, no I/O, never raises.

Why this module exists: the archive keeps raw bytes as the truth; everything
people search and read (addresses, dates, subject, text, attachments, threads,
authentication verdicts, risk notes) is derived here, so it can be derived
again after a normalizer upgrade (``syncer normalize --rebuild``).

Built on the standard :mod:`email` package with the modern policy
(:data:`email.policy.default`) for the MIME structure, transfer encodings and
parameters; header text is decoded by our own lenient rules
(:mod:`syncer.mime.text`) because real headers carry raw 8-bit bytes and
charsets the stdlib refuses. Real mail is messy and nothing here may lose a
message: every stage runs in its own ``try``; a failing stage makes the result
``partial`` (with the error) while the others still fill their fields, and a
message whose MIME structure cannot be parsed at all is ``failed`` with its
header fields filled.

Public API:

* :func:`normalize` ``(raw, *, verify_dkim=False, dns=None)``.
* :func:`attachment_content` ``(raw, part_path)``: the decoded bytes of one
  attachment, exactly those whose SHA-256 :func:`normalize` recorded.

Helpers: :mod:`syncer.mime.text` (charsets, RFC 2047, HTML),
:mod:`syncer.mime.headers` (addresses, ids, dates), :mod:`syncer.mime.parts`
(the MIME walk), :mod:`syncer.mime.auth` (Authentication-Results, DKIM, risk).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import EmailPolicy
from typing import TYPE_CHECKING, Any, TypeVar

from syncer.mime import fastparse
from syncer.mime.auth import DNSFunc, assess_risk, parse_auth_results
from syncer.mime.auth import verify_dkim as check_dkim
from syncer.mime.headers import (
    RawHeaders,
    bare_address,
    first_message_id,
    list_id,
    message_ids,
    parse_addresses,
    parse_date,
    thread_key,
    token,
)
from syncer.mime.mimeheaders import template_header
from syncer.mime.parsed import NORMALIZER_VERSION, ROLES, Address, AuthResults, NormalizedMessage
from syncer.mime.parts import Walk, declared_charsets
from syncer.model import header_end

if TYPE_CHECKING:
    from syncer.mime.attachments import TextExtractor

__all__ = ["NormalizedMessage", "attachment_content", "normalize"]

T = TypeVar("T")

_DKIM_HEADER = re.compile(rb"^dkim-signature[ \t]*:", re.IGNORECASE | re.MULTILINE)
#: The longest error text kept per message.
_MAX_ERROR = 2000
_MAX_DEFECTS = 20


def _linesep(raw: bytes) -> str:
    return "\r\n" if b"\r\n" in raw[:65536] else "\n"


class _Policy(EmailPolicy):
    """:data:`email.policy.default`, parsing each distinct header value once.

    The modern policy builds a new header object (a full RFC 5322 parse) every
    time a header is read, and the parser and the walk read Content-Type
    several times per part: that was 40% of the normalizer's time. Header
    objects are immutable, so the same (name, value) can share one.
    """

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if hasattr(value, "name"):
            return value
        return _fetch_header(name, value)


_POLICY = _Policy()


# 64, not more: the hits are a message's own repeated reads (Content-Type above
# all); 2,048 entries hit as often on the benchmark corpus (76,797 against
# 76,948 hits in 5,000 messages) but held ~25 MB of parse trees per pool process.
@functools.lru_cache(maxsize=64)
def _fetch_header(name: str, value: str) -> Any:
    # Unfolded as the stdlib's header_fetch_parse does (line breaks removed).
    made = template_header(name, value.replace("\r", "").replace("\n", ""), _POLICY.header_factory)
    if made is not None:
        return made
    return EmailPolicy.header_fetch_parse(_POLICY, name, value)


def _parse(raw: bytes) -> Message:
    return fastparse.parse(raw, _POLICY)


class _Stages:
    """Runs the stages of one normalization, collecting their errors."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def run(self, what: str, default: T, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except RecursionError:
            self.errors.append(f"{what}: nested too deeply to read")
        except Exception as exc:
            self.errors.append(f"{what}: {type(exc).__name__}: {exc}")
        return default


def normalize(
    raw: bytes,
    *,
    verify_dkim: bool = False,
    dns: DNSFunc | None = None,
    extractor: TextExtractor | None = None,
) -> NormalizedMessage:
    """Derive every normalized field of one raw message; never raises.

    :param verify_dkim: also check the topmost DKIM signature ourselves
        (:attr:`NormalizedMessage.dkim_verified`); needs DNS unless ``dns`` is given.
    :param dns: the TXT lookup for DKIM keys (tests pass one that answers
        with a locally generated key).
    :param extractor: reads the text of attachments for search
        (:attr:`NormalizedMessage.attachment_texts`); without one, none is read.
    """
    stages = _Stages()
    fields: dict[str, Any] = {}
    status = "ok"
    try:
        msg = _parse(raw)
    except Exception as exc:  # RecursionError on pathological nesting, and parser bugs
        status = "failed"
        stages.errors.append(f"MIME structure: {type(exc).__name__}: {exc}")
        msg = stages.run(
            "headers", Message(), lambda: BytesHeaderParser(policy=_POLICY).parsebytes(raw)
        )
    hints: tuple[str, ...] = stages.run("charsets", (), lambda: declared_charsets(msg))
    headers = stages.run("headers", None, lambda: RawHeaders(msg, hints))
    if headers is None:
        headers = RawHeaders(Message())

    empty: dict[str, Any] = {}
    fields.update(stages.run("header fields", empty, lambda: _header_fields(headers, raw)))
    addresses: tuple[Address, ...] = stages.run(
        "addresses",
        (),
        lambda: tuple(a for role in ROLES for a in parse_addresses(role, headers.raw(role), hints)),
    )
    extracted = extractor.for_message() if extractor is not None else None
    walk = Walk(hints, _linesep(raw), sink=extracted.add if extracted is not None else None)
    if status != "failed":
        stages.run("MIME parts", None, lambda: walk.message(msg))
        stages.errors.extend(walk.errors)
    auth: AuthResults = stages.run(
        "Authentication-Results",
        AuthResults(),
        lambda: parse_auth_results(
            headers.texts("authentication-results", words=False),
            headers.text("received-spf", words=False),
        ),
    )
    dkim_verified = None
    if verify_dkim:
        signed = _DKIM_HEADER.search(raw, 0, header_end(raw)) is not None
        dkim_verified = stages.run(
            "DKIM verification", "temperror", lambda: check_dkim(raw, dns, has_signature=signed)
        )
    no_risk: tuple[bool, tuple[str, ...]] = (False, ())
    suspicious, risk = stages.run(
        "risk",
        no_risk,
        lambda: assess_risk(
            auth,
            dkim_verified,
            addresses,
            bare_address(headers.text("return-path", words=False)),
            headers.count("from"),
        ),
    )
    if stages.errors and status == "ok":
        status = "partial"
    error = "; ".join(stages.errors)[:_MAX_ERROR] or None
    return NormalizedMessage(
        version=NORMALIZER_VERSION,
        status=status,
        error=error,
        defects=tuple(sorted(walk.defects))[:_MAX_DEFECTS],
        addresses=addresses,
        text="\n\n".join(walk.texts),
        attachments=tuple(walk.attachments),
        attachment_texts=extracted.results() if extracted is not None else (),
        auth=auth,
        dkim_verified=dkim_verified,
        signed=walk.signed,
        encrypted=walk.encrypted,
        security=",".join(sorted(walk.security)) or None,
        suspicious=suspicious,
        risk=risk,
        **fields,
    )


def _header_fields(headers: RawHeaders, raw: bytes) -> dict[str, Any]:
    message_id = first_message_id(headers.text("message-id", words=False))
    in_reply_to = first_message_id(headers.text("in-reply-to", words=False))
    references = message_ids(headers.text("references", words=False))
    date_raw = headers.text("date", words=False)
    date, date_status = parse_date(date_raw)
    subject = headers.text("subject")
    return {
        "message_id": message_id,
        "in_reply_to": in_reply_to,
        "references": references,
        "subject": subject,
        "date": date,
        "date_raw": date_raw,
        "date_status": date_status,
        "list_id": list_id(headers.text("list-id")),
        "auto_submitted": token(headers.text("auto-submitted", words=False)),
        "precedence": token(headers.text("precedence", words=False), 32),
        "thread_key": thread_key(message_id, in_reply_to, references, raw),
    }


def attachment_content(raw: bytes, part_path: str) -> bytes | None:
    """The decoded content of the attachment at ``part_path``, or None when there is none.

    Walks the message exactly as :func:`normalize` does, so the bytes hash to
    the SHA-256 it recorded for that part.
    """
    try:
        msg = _parse(raw)
        walk = Walk(declared_charsets(msg), _linesep(raw), capture=part_path)
        walk.message(msg)
    except Exception:
        return None
    return walk.captured
