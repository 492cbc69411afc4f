"""The normalizer's test corpus (tests/data/mail/*.eml), for tests to load by name.

The files are written by ``tests/data/mail/make_corpus.py``; :func:`generator`
loads that script as a module so a test can check the files are what it writes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import random
from functools import cache
from pathlib import Path
from types import ModuleType

MAIL_DIR = Path(__file__).resolve().parent / "data" / "mail"


def mail(name: str) -> bytes:
    """The raw bytes of ``tests/data/mail/<name>.eml`` (``name`` without the extension)."""
    return (MAIL_DIR / f"{name}.eml").read_bytes()


def names() -> list[str]:
    """Every corpus message, by name, sorted."""
    return sorted(path.stem for path in MAIL_DIR.glob("*.eml"))


@cache
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_corpus", MAIL_DIR / "make_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def big_attachment_message(size: int = 20 * 1024 * 1024) -> tuple[bytes, str]:
    """A message carrying one ``size``-byte attachment (made at test time, never committed).

    :returns: (raw message, SHA-256 of the attachment's content).
    """
    data = random.Random(20).randbytes(size)
    encoded = _b64_lines(data)
    raw = (
        b"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\n"
        b"Subject: The big scan\r\nDate: Mon, 02 Dec 2024 10:15:00 +0100\r\n"
        b"Message-ID: <big@corpus.example>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="big"\r\n\r\n'
        b"--big\r\nContent-Type: text/plain\r\n\r\nThe scan is attached.\r\n"
        b"--big\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="scan.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"--big--\r\n"
    )
    return raw, hashlib.sha256(data).hexdigest()


def _b64_lines(data: bytes) -> bytes:
    import base64

    encoded = base64.b64encode(data)
    return b"".join(encoded[i : i + 76] + b"\r\n" for i in range(0, len(encoded), 76))
