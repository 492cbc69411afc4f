"""Human-readable output of ``syncer show`` and the progress of ``syncer normalize``.

Why this module exists: the message view prints text that came from mail, so
it is printed with plain ``click.echo`` (rich would read ``[brackets]`` in a
subject as markup) and every control character is neutralised first: a
subject must not be able to move the cursor or retitle the terminal. Kept
apart from ``cli`` so commands stay thin; ``--json`` output never comes here.
"""

from __future__ import annotations

import re
from typing import Any

import click

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_ROLE_LABELS = {
    "from": "From",
    "sender": "Sender",
    "reply-to": "Reply-To",
    "to": "To",
    "cc": "Cc",
    "bcc": "Bcc",
    "delivered-to": "Delivered-To",
}


def printable(text: str | None, *, keep_newlines: bool = False) -> str:
    """``text`` with control and bidi-override characters shown as ``\\xNN``-style escapes."""
    if not text:
        return ""
    if not keep_newlines:
        text = text.replace("\r", " ").replace("\n", " ")
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text.replace("\t", "    "))


def _size(n: int | None) -> str:
    value = float(n or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover


def _line(label: str, value: str | None) -> None:
    if value:
        click.echo(f"{label + ':':<14}{printable(value)}")


# Allowed (C901): one branch per section of the message view.
def render_show(view: dict[str, Any]) -> None:  # noqa: C901
    """Print the normalized view of one message: ``MessageDetail.to_dict()``
    (see ``ArchiveStore.message_detail``)."""
    parse, headers, auth = view["parse"], view["headers"], view["auth"]
    click.echo(
        f"Message {view['id']}  sha256 {view['sha256']}  {_size(view['size'])}  "
        f"parse: {parse['status']}"
    )
    if parse["status"] == "pending":
        click.echo("Not normalized yet: run `syncer normalize`.")
    if parse["error"]:
        _line("Parse error", parse["error"])
    if parse["defects"]:
        _line("Defects", ", ".join(parse["defects"]))
    _line("Subject", headers["subject"])
    date = headers["date"]
    if headers["date_status"] not in (None, "ok"):
        date = f"{date or 'unknown'} ({headers['date_status']}: {headers['date_raw'] or 'no Date'})"
    _line("Date", date)
    for role, label in _ROLE_LABELS.items():
        people = view["addresses"].get(role, [])
        shown = [
            f"{p['name']} <{p['display'] or ''}>" if p["name"] else (p["display"] or "")
            for p in people
        ]
        _line(label, ", ".join(shown))
    _line("Message-ID", headers["message_id"])
    _line("In-Reply-To", headers["in_reply_to"])
    if headers["references"]:
        _line("References", f"{len(headers['references'])} ({headers['references'][0]} ...)")
    _line("Thread", view["thread_key"])
    _line("List-Id", headers["list_id"])
    bulk = [v for v in (headers["auto_submitted"], headers["precedence"]) if v]
    _line("Bulk", ", ".join(bulk))
    verdicts = " ".join(f"{k}={auth[k]}" for k in ("spf", "dkim", "dmarc") if auth[k])
    if auth["dkim_verified"]:
        verdicts += f" (DKIM checked here: {auth['dkim_verified']})"
    _line("Auth", verdicts.strip())
    security = view["security"]
    marks = [m for m in ("signed", "encrypted") if security[m]]
    if marks:
        _line("Security", f"{' and '.join(marks)} ({security['scheme'] or '?'})")
    if view["suspicious"]:
        _line("Risk", f"SUSPICIOUS: {view['risk_note']}")
    elif view["risk_note"]:
        _line("Risk", view["risk_note"])
    if view.get("labels"):
        _line("Labels", ", ".join(view["labels"]))
    for entry in view["folders"]:
        flags = " ".join(entry["flags"])
        state = "  (gone from the server)" if entry["gone"] else ""
        _line(
            "Folder",
            f"{entry['account']}/{entry['folder']} uid {entry['uid']}"
            f"{f' ({flags})' if flags else ''}{state}",
        )
    if view["attachments"]:
        click.echo("Attachments:")
        for a in view["attachments"]:
            name = a["filename"] or a["safe_filename"]
            kind = "inline" if a["inline"] else (a["disposition"] or "part")
            click.echo(
                f"  {a['index']}. {printable(name)}  {a['content_type']}  {_size(a['size'])}  "
                f"{kind}  part {a['part_path']}  sha256 {a['sha256'][:16]}"
            )
    if view["text_length"]:
        excerpt = len(view["text_excerpt"])
        more = (
            f"first {excerpt} of {view['text_length']}" if excerpt < view["text_length"] else "all"
        )
        click.echo(f"Text ({more} characters):")
        for text_line in view["text_excerpt"].splitlines():
            click.echo(f"  {printable(text_line)}")
