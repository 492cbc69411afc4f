"""The normalizer's golden corpus and the fields compared on it (tests/unit/test_normalize_golden).

Why this module exists: the normalizer was rewritten for speed (issue 17) and
every field it derives must stay what it was. ``tests/data/golden/normalized.json.gz``
holds every field of every message below as the previous normalizer derived
it; the test derives them again and compares. Regenerate the fixture only
for a deliberate change, and say why in the commit:

    .venv/bin/python -m tests.golden --write

The corpus: the hand-written hostile messages (tests/data/mail), damaged
copies of them (truncated, bytes flipped), a mail bomb and garbage, generated
MIME trees (random nesting, binary attachments, base64/quoted-printable/8bit,
LF and CRLF), a message with a large attachment, and a sample of the
benchmark corpus (tests/corpus.py).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
import sys
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP, default
from pathlib import Path
from typing import Any

from syncer.mime.parsed import NormalizedMessage

FIXTURE = Path(__file__).resolve().parent / "data" / "golden" / "normalized.json.gz"
#: Strings longer than this are compared by length and SHA-256 (keeps the fixture small).
_LONG = 160
#: Messages of the benchmark corpus in the sample.
BENCH_SAMPLE = 400


def _mail_files() -> Iterator[tuple[str, bytes]]:
    from tests.mail_samples import MAIL_DIR

    for path in sorted(MAIL_DIR.glob("*.eml")):
        yield f"mail/{path.stem}", path.read_bytes()


def _damaged(name: str, raw: bytes, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    if len(raw) > 40:
        for cut in (len(raw) // 3, len(raw) // 2, len(raw) - 7):
            yield f"{name}/cut{cut}", raw[:cut]
    flipped = bytearray(raw)
    for _ in range(max(1, len(raw) // 200)):
        position = rng.randrange(len(flipped)) if flipped else 0
        if flipped:
            flipped[position] = rng.randrange(256)
    yield f"{name}/flipped", bytes(flipped)


def _bomb() -> bytes:
    inner = b"Subject: bottom\r\n\r\nbottom\r\n"
    for _ in range(3000):
        inner = b"Content-Type: message/rfc822\r\n\r\n" + inner
    return b"Subject: top\r\nFrom: a@example.com\r\n" + inner


_GARBAGE = (b"", b"\r\n", b"\x00\xff" * 100, b"Subject", b":::\r\n\r\n", bytes(range(256)) * 4)
_WORDS = ("Rechnung", "invoice", "naïve", "メール", "메일을", "Straße", "budget", "q=3D", "--", ".")


def _text(rng: random.Random, size: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(size))


def _tree(rng: random.Random, depth: int = 0) -> EmailMessage:
    """A random MIME tree as a mail client writes it (the property test's shapes)."""
    msg = EmailMessage()
    msg["From"] = rng.choice(["Alice <alice@example.com>", "=?utf-8?q?J=C3=BCrgen?= <j@x.de>"])
    msg["To"] = "bob@example.org"
    msg["Subject"] = _text(rng, rng.randrange(1, 6))
    msg["Message-ID"] = f"<gen{rng.randrange(10**9)}@golden.example>"
    cte = rng.choice([None, "base64", "quoted-printable", "8bit"])
    msg.set_content(_text(rng, rng.randrange(0, 80)), cte=cte)
    if rng.random() < 0.5:
        msg.add_alternative(f"<p>{_text(rng, rng.randrange(0, 40))}</p>", subtype="html")
    for index in range(rng.randrange(0, 4)):
        kind = rng.choice(["pdf", "png", "octet-stream", "plain", "csv"])
        filename = rng.choice([f"file{index}.{kind}", "Überweisung März.pdf", "a/../b.bin", None])
        if kind in ("plain", "csv"):
            msg.add_attachment(
                _text(rng, rng.randrange(1, 200)),
                subtype=kind,
                filename=filename,
                cte=rng.choice(["base64", "quoted-printable", "8bit"]),
            )
        else:
            maintype = "image" if kind == "png" else "application"
            msg.add_attachment(
                rng.randbytes(rng.randrange(0, 6000)),
                maintype=maintype,
                subtype=kind,
                filename=filename,
                cte=rng.choice(["base64", "base64", "quoted-printable"]),
            )
    if depth < 2 and rng.random() < 0.3:
        msg.add_attachment(_tree(rng, depth + 1))
    return msg


def _generated(rng: random.Random, count: int) -> Iterator[tuple[str, bytes]]:
    for index in range(count):
        msg = _tree(rng)
        # Fixed boundaries: the stdlib draws them from the global random generator.
        for number, part in enumerate(msg.walk()):
            if part.is_multipart() and not part.get_content_type().startswith("message/"):
                part.set_boundary(f"==golden{index}-{number}==")
        policy = SMTP if index % 2 else default.clone(linesep="\n")
        yield f"generated/{index}", msg.as_bytes(policy=policy)


def _big() -> bytes:
    data = random.Random(20).randbytes(300_000)
    encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")
    return (
        b"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: big\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="big"\r\n\r\n'
        b"--big\r\nContent-Type: text/plain\r\n\r\nThe scan is attached.\r\n"
        b'--big\r\nContent-Type: application/pdf; name="scan.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"--big--\r\n"
    )


def corpus() -> Iterator[tuple[str, bytes]]:
    """Every message of the golden corpus, by a stable name."""
    from tests.corpus import generate

    rng = random.Random(17)
    mails = list(_mail_files())
    yield from mails
    for name, raw in mails:
        yield from _damaged(name, raw, rng)
    yield "bomb", _bomb()
    for index, raw in enumerate(_GARBAGE):
        yield f"garbage/{index}", raw
    yield "big", _big()
    yield from _generated(random.Random(1717), 300)
    for index, message in enumerate(generate(BENCH_SAMPLE)):
        yield f"bench/{index}", message.raw


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and len(value) > _LONG:
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{len(value)}:{digest}"
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def fields(result: NormalizedMessage) -> dict[str, Any]:
    """Every field of a result, JSON-ready (long strings as length and hash)."""
    return {key: _plain(value) for key, value in asdict(result).items()}


def derive() -> dict[str, dict[str, Any]]:
    """Normalize the golden corpus with this checkout's code."""
    from syncer.mime.attachments import TextExtractor
    from syncer.mime.normalize import normalize

    out: dict[str, dict[str, Any]] = {}
    with TextExtractor() as extractor:
        for name, raw in corpus():
            out[name] = fields(normalize(raw, extractor=extractor))
    return out


def load() -> dict[str, dict[str, Any]]:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as handle:
        data: dict[str, dict[str, Any]] = json.load(handle)
    return data


def main() -> None:
    if "--write" not in sys.argv:
        raise SystemExit("usage: python -m tests.golden --write")
    derived = derive()
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(FIXTURE, "wt", encoding="utf-8", compresslevel=9) as handle:
        json.dump(derived, handle, ensure_ascii=False, sort_keys=True, indent=0)
    print(f"{len(derived)} messages written to {FIXTURE}")


if __name__ == "__main__":
    main()
