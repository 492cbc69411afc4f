"""``.eml`` files: one message per file, the archived bytes unchanged, a safe readable name.

The name is ``<date>-<subject>-<sha256 prefix>.eml``: sortable by date,
recognisable by subject, unique by content. The subject comes from the
archive when normalization has run, else from the raw header (RFC 2047
decoded); either way it goes through :func:`~syncer.formats.safe_names.safe_component`,
so no subject can name another directory, a device or an over-long file.

Public API: :func:`eml_name`, :func:`raw_subject`, :func:`write_file`.
"""

from __future__ import annotations

import os
from datetime import datetime
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

from syncer.formats.files import create_private
from syncer.formats.safe_names import safe_component

__all__ = ["eml_name", "raw_subject", "write_file"]

#: Room for the subject in a name (bytes of UTF-8); the rest is date, hash and suffix.
SUBJECT_BYTES = 80


def raw_subject(raw: bytes) -> str:
    """The Subject header of ``raw``, decoded; empty when missing or unreadable."""
    try:
        value = BytesHeaderParser(policy=compat32).parsebytes(raw, headersonly=True)["Subject"]
        if value is None:
            return ""
        return str(make_header(decode_header(str(value))))
    except Exception:  # malformed encoded words: a name is not worth failing an export
        return ""


def eml_name(when: datetime | None, subject: str | None, sha256: str) -> str:
    """``20240104-100000-Quarterly report-3fa2c1d0e9b8.eml``."""
    stamp = when.strftime("%Y%m%d-%H%M%S") if when is not None else "00000000-000000"
    title = safe_component(subject or "", max_bytes=SUBJECT_BYTES, empty="no subject")
    return f"{stamp}-{title}-{sha256[:12]}.eml"


def write_file(path: Path, raw: bytes, when: datetime | None = None) -> None:
    """Write ``raw`` to ``path`` atomically (temporary name, then rename); mtime = ``when``.

    The file is created 0600 with ``O_EXCL | O_NOFOLLOW`` (a planted symlink makes it
    fail rather than write elsewhere), see :mod:`syncer.formats.files`.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)  # a leftover of a crash (unlink removes a link, never follows)
    with os.fdopen(create_private(tmp), "wb") as fh:
        fh.write(raw)
    if when is not None:
        stamp = when.timestamp()
        os.utime(tmp, (stamp, stamp), follow_symlinks=False)
    os.replace(tmp, path)
