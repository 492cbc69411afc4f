"""Showing mail safely: the sanitized HTML frame, attachments and their downloads.

Why this module exists: a message's HTML is written by whoever sent it. It is
cleaned with nh3 (an allow-list sanitizer: no script, style, form, meta, object,
SVG or event handler survives, and only ``http``, ``https``, ``mailto``,
``cid`` and ``data`` URLs), then served as its own document into an
``<iframe sandbox>`` (no scripts, no same-origin) whose response carries
``Content-Security-Policy: default-src 'none'; img-src data:`` plus
``sandbox``. Remote images are removed unless the reader asks for them (then
the frame's ``img-src`` also allows ``https:``); ``cid:`` images are replaced by
``data:`` URLs of the archived part, so the frame needs no request of its own.

Downloads: the file name comes from the archive's ``safe_filename`` and is put
only in a ``Content-Disposition`` header (ASCII fallback plus RFC 6266
``filename*``), never used as a path; the content type is the declared one only
for a few inert types, else ``application/octet-stream``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import nh3

from syncer.archive.views import AttachmentView, MessageDetail
from syncer.mime.normalize import attachment_content

__all__ = [
    "FRAME_CSP",
    "Frame",
    "attachment_bytes",
    "content_disposition",
    "download_type",
    "frame_document",
    "zip_attachments",
]

#: The mail frame's policy; :func:`frame_csp` adds remote images when asked for.
FRAME_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"
_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "code", "col", "colgroup",
    "dd", "del", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "i", "img", "ins", "li", "ol", "p", "pre", "q", "s", "small", "span", "strike", "strong",
    "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "*": {"align", "title", "dir", "lang"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "valign", "width"},
    "th": {"colspan", "rowspan", "valign", "width"},
    "table": {"width", "cellpadding", "cellspacing", "border"},
    "font": {"color", "size"},
}
_SCHEMES = {"http", "https", "mailto", "cid", "data"}
_INERT_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"}
)
_CID_IMAGE = re.compile(r"^image/(png|jpeg|gif|webp)$")
#: Largest total of cid: images inlined into one frame.
_MAX_INLINE = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Frame:
    """The mail frame's document, its policy and how many remote images were held back."""

    html: str
    csp: str
    blocked: int


def _cid_images(detail: MessageDetail, raw: bytes) -> dict[str, str]:
    """``content id -> data: URL`` of the message's inline images, within :data:`_MAX_INLINE`."""
    found: dict[str, str] = {}
    total = 0
    for item in detail.attachments:
        if not item.content_id or not _CID_IMAGE.match(item.content_type or ""):
            continue
        content = attachment_bytes(raw, item)
        if content is None or total + len(content) > _MAX_INLINE:
            continue
        total += len(content)
        encoded = base64.b64encode(content).decode("ascii")
        found[item.content_id.strip("<>")] = f"data:{item.content_type};base64,{encoded}"
    return found


def frame_document(html: str, detail: MessageDetail, raw: bytes, *, remote: bool) -> Frame:
    """The sanitized document for the mail frame (see the module docstring)."""
    images = _cid_images(detail, raw)
    blocked = 0

    def keep(tag: str, attribute: str, value: str) -> str | None:
        nonlocal blocked
        if tag == "img" and attribute == "src":
            lowered = value.strip().lower()
            if lowered.startswith("cid:"):
                return images.get(value.strip()[4:].strip("<>"))
            if lowered.startswith("data:"):
                return value if lowered.startswith("data:image/") else None
            if not remote:
                blocked += 1
                return None
        if (
            tag == "a"
            and attribute == "href"
            and value.strip().lower().startswith(("cid:", "data:"))
        ):
            return None
        return value

    clean = nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags={"script", "style", "title", "noscript", "svg", "math", "template"},
        attributes=_ATTRIBUTES,
        attribute_filter=keep,
        url_schemes=_SCHEMES,
        link_rel="noopener noreferrer",
    )
    csp = FRAME_CSP.replace("img-src data:", "img-src data: https:") if remote else FRAME_CSP
    document = (
        '<!doctype html><html><head><meta charset="utf-8"><base target="_blank"></head>'
        f"<body>{clean}</body></html>"
    )
    return Frame(document, csp, blocked)


def attachment_bytes(raw: bytes, item: AttachmentView) -> bytes | None:
    """The decoded content of an attachment, checked against the SHA-256 recorded for it."""
    content = attachment_content(raw, item.part_path)
    if content is None or (item.sha256 and hashlib.sha256(content).hexdigest() != item.sha256):
        return None
    return content


def _ascii_name(name: str) -> str:
    cleaned = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;/' else "_" for c in name)
    return cleaned.strip(" .") or "attachment"


def content_disposition(name: str | None, fallback: str = "attachment") -> str:
    """``attachment; filename="ascii"; filename*=UTF-8''...``: safe for any name from mail."""
    chosen = (name or "").replace("/", "_").replace("\\", "_").strip() or fallback
    return (
        f"attachment; filename=\"{_ascii_name(chosen)}\"; filename*=UTF-8''{quote(chosen, safe='')}"
    )


def download_type(content_type: str | None) -> str:
    """The type to serve a download as: the declared one only when it is inert."""
    declared = (content_type or "").lower()
    return declared if declared in _INERT_TYPES else "application/octet-stream"


def _member_names(items: list[AttachmentView]) -> Iterator[tuple[AttachmentView, str]]:
    """Unique zip member names from ``safe_filename`` (flat: no directories, no ``..``)."""
    used: set[str] = set()
    for item in items:
        base = (item.safe_filename or f"attachment-{item.index}").replace("/", "_")
        base = base.replace("\\", "_").lstrip(".") or f"attachment-{item.index}"
        name, n = base, 1
        while name in used:
            n += 1
            stem, dot, ext = base.rpartition(".")
            name = f"{stem}-{n}.{ext}" if dot and stem else f"{base}-{n}"
        used.add(name)
        yield item, name


def zip_attachments(raw: bytes, detail: MessageDetail) -> bytes:
    """Every attachment of the message in one zip ("download all")."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for item, name in _member_names(list(detail.attachments)):
            content = attachment_bytes(raw, item)
            if content is not None:
                archive.writestr(name, content)
    return out.getvalue()
