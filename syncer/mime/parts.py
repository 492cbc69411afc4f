"""The MIME tree walk of the normalizer: body text, attachments, security markers.

Why this module exists: deciding which parts are "the text" and which are
files is where real mail differs most (alternatives, related images, forwarded
messages, signatures, encrypted blobs, text files attached inline), so it
lives apart from the header fields (:mod:`syncer.mime.headers`).

Rules, in short:

* Parts are numbered as IMAP numbers them (see :mod:`syncer.mime.parsed`).
* multipart/alternative: text/plain is the text when it has any, else the
  HTML (or the multipart holding it); the other alternatives are neither text
  nor attachments, but files inside them (related images) are attachments.
* A text/plain or text/html leaf without a file name and not marked
  ``attachment`` is text; every other leaf is an attachment, and so is every
  ``message/*`` part (its decoded content is the enclosed message), whose own
  parts are walked too.
* multipart/signed, application/pkcs7-mime and inline PGP armour mark the
  message signed or encrypted; encrypted content is listed as attachments
  (hashes, sizes) and never read as text.

Every part is handled in its own ``try``: one unreadable part is recorded in
:attr:`Walk.errors` and the walk goes on.

Public API: :class:`Walk`, :func:`declared_charsets`, :func:`decoded_payload`.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from email.policy import default as default_policy
from io import BytesIO
from typing import Any, TypeAlias, cast

import pybase64

from syncer.mime.headers import RawHeaders
from syncer.mime.parsed import Attachment
from syncer.mime.text import (
    codec_for,
    decode_bytes,
    header_text,
    html_text,
    safe_filename,
    strip_surrogates,
)
from syncer.model import header_end

#: Receives each leaf attachment: (part path, content type, file name, charset, bytes).
AttachmentSink: TypeAlias = Callable[[str, str, str | None, str | None, bytes], None]

#: The most text kept per message for search; the rest of a huge text body is dropped.
MAX_TEXT = 1_000_000
#: Deeper MIME nesting than this is not walked (mail bombs nest thousands of levels);
#: it also keeps part paths within the archive's 64 characters.
MAX_DEPTH = 30

_EXTENSIONS = {
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "application/octet-stream": ".bin",
    "application/pgp-signature": ".asc",
    "application/pgp-encrypted": ".asc",
    "application/pkcs7-signature": ".p7s",
    "application/x-pkcs7-signature": ".p7s",
    "application/pkcs7-mime": ".p7m",
    "application/x-pkcs7-mime": ".p7m",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "text/plain": ".txt",
    "text/html": ".html",
    "text/calendar": ".ics",
    "message/rfc822": ".eml",
    "message/global": ".eml",
}
_SIGNED_PROTOCOLS = {
    "application/pgp-signature": "pgp-mime",
    "application/pkcs7-signature": "smime",
    "application/x-pkcs7-signature": "smime",
}
_PKCS7_MIME = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})
_TEXT_SUBTYPES = frozenset({"plain", "html"})
_PGP_MESSAGE = re.compile(
    r"-----BEGIN PGP MESSAGE-----.*?(?:-----END PGP MESSAGE-----|\Z)", re.DOTALL
)
_PGP_SIGNATURE = re.compile(
    r"-----BEGIN PGP SIGNATURE-----.*?(?:-----END PGP SIGNATURE-----|\Z)", re.DOTALL
)
_PGP_SIGNED_HEAD = re.compile(r"-----BEGIN PGP SIGNED MESSAGE-----\r?\n(?:Hash:[^\n]*\n)*\r?\n?")

# Serialising a forwarded message: keep its header lines as they were (no refolding).
_GEN_POLICY = default_policy.clone(refold_source="none", max_line_length=0)


def declared_charsets(msg: Message) -> tuple[str, ...]:
    """Python codec names of every charset a part of ``msg`` declares, in order."""
    found: list[str] = []
    try:
        for part in msg.walk():
            codec = codec_for(_param(part, "content-type", "charset"))
            if codec is not None and codec not in ("ascii", "utf-8"):
                found.append(codec)
    except Exception:  # a walk over a broken tree: use what was found
        pass
    return tuple(dict.fromkeys(found))


def decoded_payload(part: Message) -> Any:
    """``part.get_payload(decode=True)``, base64 decoded in SIMD code where that is certain
    to give the same bytes.

    Why: the stdlib decodes base64 with ``binascii`` at about 0.5 GB/s, and every
    attachment is decoded to be hashed: that was a tenth of a worker's time on the
    benchmark corpus; pybase64 decodes the same bytes about 20 times faster. Only
    payloads the stdlib decodes without a defect take this path: ASCII text whose
    letters, without line breaks (what ``b"".join(payload.splitlines())`` leaves),
    are whole groups of four of the base64 alphabet with at most two ``=`` at the
    end. For those the stdlib's strict decode succeeds and pybase64's strict decode
    gives the same bytes (it refuses exactly what the strict decode refuses,
    ``tests/unit/test_mime_base64.py``); anything else, or a refusal, goes the
    stdlib's way with its defects. Also fewer copies at once of a large body: the
    stdlib splits the body's bytes into a list of lines and joins them before it
    decodes (a pool worker's memory peak on a multi-megabyte attachment); one
    ``translate`` drops the line breaks here.
    """
    payload = getattr(part, "_payload", None)
    if (
        isinstance(payload, str)
        and payload.isascii()
        and str(part.get("content-transfer-encoding", "")).lower() == "base64"
    ):
        letters = payload.encode("ascii").translate(None, b"\r\n")
        if canonical_base64(letters):
            try:
                return pybase64.b64decode(letters, validate=True)
            except ValueError:  # binascii.Error: the stdlib's way decides
                pass
    return part.get_payload(decode=True)


def canonical_base64(letters: bytes) -> bool:
    """Whether ``letters`` are whole groups of four with ``=`` only as their last one or two."""
    if len(letters) % 4:
        return False
    pad = letters.find(b"=")
    return pad < 0 or (pad >= len(letters) - 2 and letters.endswith(b"=" * (len(letters) - pad)))


def _first_raw(part: Message, name: str) -> str | None:
    for key, value in part.raw_items():
        if key.lower() == name:
            return str(value)
    return None


def _param(part: Message, header: str, name: str, hints: tuple[str, ...] = ()) -> str | None:
    """A parameter of a raw header, RFC 2231 (``name*=utf-8''...``, continuations) decoded."""
    raw = _first_raw(part, header)
    if raw is None:
        return None
    return _param_of(raw, header, name, hints)


@functools.lru_cache(maxsize=4096)
def _param_of(raw: str, header: str, name: str, hints: tuple[str, ...]) -> str | None:
    """:func:`_param` of a raw header value; cached, as header values repeat across parts
    and messages (``text/plain; charset=utf-8``) and this is a pure function of them.

    Read from the raw header through a throwaway compat32 message, so
    undecodable bytes are decoded by our rules (``hints``) and not replaced.
    """
    holder = Message()
    holder[header] = strip_surrogates(re.sub(r"\r?\n(?=[ \t])", "", raw), hints)
    value: Any = holder.get_param(name, header=header)
    if value is None:
        return None
    if isinstance(value, tuple):
        charset, _language, text = value
        data = str(text).encode("latin-1", "replace")
        return decode_bytes(data, charset or "utf-8", hints)
    return str(value)


def _serialise(msg: Message, linesep: str) -> bytes:
    buffer = BytesIO()
    generator = BytesGenerator(
        buffer, mangle_from_=False, policy=_GEN_POLICY.clone(linesep=linesep)
    )
    generator.flatten(cast("EmailMessage", msg))
    return buffer.getvalue()


class Walk:
    """One walk over a parsed message; read the results from its attributes.

    :param capture: a part path whose decoded content to keep in
        :attr:`captured` (for ``syncer show --attachment``).
    :param sink: called with ``(part path, content type, file name, charset,
        decoded bytes)`` for every leaf attachment (to extract its text for search).
    """

    def __init__(
        self,
        hints: tuple[str, ...],
        linesep: str = "\r\n",
        capture: str | None = None,
        sink: AttachmentSink | None = None,
    ) -> None:
        self.hints = hints
        self.linesep = linesep
        self.capture = capture
        self.sink = sink
        self.captured: bytes | None = None
        self.texts: list[str] = []
        self.text_size = 0
        self.attachments: list[Attachment] = []
        self.security: set[str] = set()
        self.signed = False
        self.encrypted = False
        self.defects: set[str] = set()
        self.errors: list[str] = []

    # ------------------------------------------------------------------ structure

    def message(
        self, msg: Message, prefix: str = "", want_text: bool = True, depth: int = 0
    ) -> None:
        """Walk a message's body: its parts are ``prefix.1``, ``prefix.2`` ... (or ``1``, ``2``)."""
        self._defects(msg)
        if msg.is_multipart() and not msg.get_content_type().startswith("message/"):
            self._children(msg, prefix, want_text, depth)
        else:
            self.entity(msg, f"{prefix}.1" if prefix else "1", want_text, depth, body=True)

    def _children(self, part: Message, prefix: str, want_text: bool, depth: int) -> None:
        payload = part.get_payload()
        children = (
            [c for c in payload if isinstance(c, Message)] if isinstance(payload, list) else []
        )
        subtype = part.get_content_subtype()
        chosen = self._choose(children) if subtype == "alternative" else None
        if subtype == "signed":
            self.signed = True
            protocol = (_param(part, "content-type", "protocol") or "").strip().lower()
            self.security.add(
                _SIGNED_PROTOCOLS.get(protocol, "smime" if "pkcs7" in protocol else "pgp-mime")
            )
        elif subtype == "encrypted":
            self.encrypted = True
            protocol = (_param(part, "content-type", "protocol") or "").strip().lower()
            self.security.add("pgp-mime" if "pgp" in protocol or not protocol else protocol)
            want_text = False
        for index, child in enumerate(children, 1):
            path = f"{prefix}.{index}" if prefix else str(index)
            wanted = want_text and (chosen is None or index - 1 == chosen)
            self.entity(child, path, wanted, depth + 1)

    def entity(
        self, part: Message, path: str, want_text: bool, depth: int, *, body: bool = False
    ) -> None:
        """One body part at ``path``: a multipart, an enclosed message or a leaf."""
        if depth > MAX_DEPTH:
            self.errors.append(f"part {path}: nested deeper than {MAX_DEPTH} levels; not read")
            return
        try:
            if not body:
                self._defects(part)
            ctype = part.get_content_type()
            if ctype.startswith("message/") and part.is_multipart():
                self._enclosed(part, path, want_text, depth)
            elif part.is_multipart():
                self._children(part, path, want_text, depth)
            else:
                self._leaf(part, path, want_text)
        except RecursionError:
            self.errors.append(f"part {path}: nested too deeply to read")
        except Exception as exc:
            self.errors.append(f"part {path}: {type(exc).__name__}: {exc}")

    def _choose(self, children: list[Message]) -> int | None:
        """Which alternative is the text: a non-empty text/plain, else HTML, else the last."""
        if not children:
            return None
        html = other = None
        for index, child in enumerate(children):
            ctype = child.get_content_type()
            if ctype == "text/plain" and not child.is_multipart():
                data = decoded_payload(child)
                if isinstance(data, bytes) and data.strip():
                    return index
            elif ctype == "text/html" and html is None:
                html = index
            elif child.is_multipart() and other is None:
                other = index
        if html is not None:
            return html
        return other if other is not None else len(children) - 1

    def _defects(self, part: Message) -> None:
        for defect in getattr(part, "defects", ()):
            self.defects.add(type(defect).__name__)

    # ------------------------------------------------------------------ leaves

    def _enclosed(self, part: Message, path: str, want_text: bool, depth: int) -> None:
        """A message/rfc822 (or other message/*) part: an attachment, and its parts walked."""
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        full = _serialise(part, self.linesep)
        content = full[header_end(full) :]
        filename = self._filename(part)
        fallback_stem = None
        if isinstance(inner, Message) and part.get_content_type() in (
            "message/rfc822",
            "message/global",
        ):
            headers = RawHeaders(inner, self.hints)
            subject = headers.text("subject")
            fallback_stem = subject
            if want_text:
                lines = [
                    f"{label}: {value}"
                    for label, value in (("From", headers.text("from")), ("Subject", subject))
                    if value
                ]
                if lines:
                    self._add_text("\n".join(lines))
        self._attachment(part, path, content, filename, fallback_stem)
        if isinstance(inner, Message) and part.get_content_type() in (
            "message/rfc822",
            "message/global",
        ):
            self.message(inner, path, want_text, depth + 1)

    def _leaf(self, part: Message, path: str, want_text: bool) -> None:
        ctype = part.get_content_type()
        maintype, subtype = ctype.split("/", 1) if "/" in ctype else (ctype, "")
        disposition = part.get_content_disposition()
        filename = self._filename(part)
        if ctype in _PKCS7_MIME:
            kind = (_param(part, "content-type", "smime-type") or "").lower()
            if kind == "signed-data":
                self.signed = True
            elif kind != "compressed-data":
                self.encrypted = True
            self.security.add("smime")
        elif ctype == "application/pgp-encrypted":
            self.encrypted = True
            self.security.add("pgp-mime")
        textual = (maintype == "text" and subtype in _TEXT_SUBTYPES) or maintype == "multipart"
        if textual and disposition != "attachment" and not filename:
            if want_text:
                self._text(part, subtype == "html")
            return
        data = decoded_payload(part)
        content = data if isinstance(data, bytes) else b""
        self._attachment(part, path, content, filename, None)
        if self.sink is not None and content and not self.encrypted:
            charset = _param(part, "content-type", "charset", self.hints)
            self.sink(path, ctype, filename, charset, content)

    def _text(self, part: Message, html: bool) -> None:
        data = decoded_payload(part)
        if not isinstance(data, bytes) or not data:
            return
        charset = _param(part, "content-type", "charset", self.hints)
        text = decode_bytes(data, charset, self.hints)
        if html:
            text, defect = html_text(text)
            if defect is not None:
                self.defects.add(defect)
                self.errors.append("HTML nested too deeply; its text was read without the markup")
        if "-----BEGIN PGP " in text:
            text = self._inline_pgp(text)
        self._add_text(text.replace("\r\n", "\n").strip())

    def _inline_pgp(self, text: str) -> str:
        if "-----BEGIN PGP MESSAGE-----" in text:
            self.encrypted = True
            self.security.add("pgp-inline")
            text = _PGP_MESSAGE.sub("", text)
        if "-----BEGIN PGP SIGNED MESSAGE-----" in text:
            self.signed = True
            self.security.add("pgp-inline")
            text = _PGP_SIGNED_HEAD.sub("", text)
            text = _PGP_SIGNATURE.sub("", text)
        return text

    def _add_text(self, text: str) -> None:
        if not text or self.text_size >= MAX_TEXT:
            return
        text = text[: MAX_TEXT - self.text_size]
        self.texts.append(text)
        self.text_size += len(text)

    def _filename(self, part: Message) -> str | None:
        name = _param(part, "content-disposition", "filename", self.hints)
        if not name:
            name = _param(part, "content-type", "name", self.hints)
        if not name:
            return None
        name = header_text(name, self.hints)
        return name or None

    def _attachment(
        self,
        part: Message,
        path: str,
        data: bytes,
        filename: str | None,
        fallback_stem: str | None,
    ) -> None:
        ctype = part.get_content_type()
        disposition = part.get_content_disposition()
        content_id = _first_raw(part, "content-id")
        cid = header_text(content_id, self.hints).strip("<> ") if content_id else None
        cid = cid or None
        inline = disposition == "inline" or (disposition is None and cid is not None)
        extension = _EXTENSIONS.get(ctype, ".bin")
        stem = fallback_stem or f"part-{path}"
        fallback = safe_filename(stem[:80], f"part-{path}") + extension
        if path == self.capture:
            self.captured = data
        self.attachments.append(
            Attachment(
                part_path=path,
                filename=filename,
                safe_filename=safe_filename(filename, fallback),
                content_type=ctype[:255],
                disposition=disposition,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                inline=inline,
                content_id=cid[:255] if cid else None,
            )
        )
