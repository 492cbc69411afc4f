"""Property: for generated MIME trees, normalization never raises and attachment hashes match.

Messages are built with the stdlib's EmailMessage (random nesting of mixed,
alternative and related multiparts, forwarded messages, random attachment
bytes, names and transfer encodings), serialised, then normalized: every
attachment put in must come out with the SHA-256 of exactly its bytes.
Bytes are also mutated at random to check nothing raises on damaged input.
"""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.policy import SMTP

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncer.mime.normalize import attachment_content, normalize

_names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30
).map(lambda s: s.strip() or "x")
_types = st.sampled_from(
    [("application", "pdf"), ("image", "png"), ("application", "octet-stream"), ("audio", "mpeg")]
)
_bodies = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=200)


@st.composite
def messages(draw: st.DrawFn, depth: int = 0) -> tuple[EmailMessage, list[str]]:
    """A message and the SHA-256s of the attachments put into it (all levels)."""
    msg = EmailMessage()
    msg["From"] = "Alice <alice@example.com>"
    msg["To"] = "bob@example.org"
    msg["Subject"] = draw(_names)
    msg.set_content(draw(_bodies))
    if draw(st.booleans()):
        msg.add_alternative(f"<p>{draw(_bodies)}</p>", subtype="html")
    hashes: list[str] = []
    for _ in range(draw(st.integers(0, 3))):
        data = draw(st.binary(max_size=2000))
        maintype, subtype = draw(_types)
        msg.add_attachment(
            data,
            maintype=maintype,
            subtype=subtype,
            filename=draw(_names),
            cte=draw(st.sampled_from(["base64", "quoted-printable"])),
        )
        hashes.append(hashlib.sha256(data).hexdigest())
    if depth < 2 and draw(st.booleans()):
        inner, inner_hashes = draw(messages(depth + 1))
        msg.add_attachment(inner)
        hashes.extend(inner_hashes)
    return msg, hashes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_normalize_never_raises_and_attachment_hashes_match(
    case: tuple[EmailMessage, list[str]],
) -> None:
    msg, hashes = case
    raw = msg.as_bytes(policy=SMTP)
    result = normalize(raw)
    assert result.status == "ok", result.error
    leaves = [a for a in result.attachments if a.content_type != "message/rfc822"]
    assert sorted(a.sha256 for a in leaves) == sorted(hashes)
    for attachment in result.attachments:
        content = attachment_content(raw, attachment.part_path)
        assert content is not None and hashlib.sha256(content).hexdigest() == attachment.sha256


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    messages(),
    st.lists(st.tuples(st.integers(0, 10_000), st.binary(min_size=1, max_size=8)), max_size=5),
)
def test_damaged_messages_never_raise(
    case: tuple[EmailMessage, list[str]], damage: list[tuple[int, bytes]]
) -> None:
    raw = bytearray(case[0].as_bytes(policy=SMTP))
    for position, junk in damage:
        at = position % max(1, len(raw))
        raw[at : at + len(junk)] = junk
    result = normalize(bytes(raw))
    assert result.status in ("ok", "partial", "failed")
