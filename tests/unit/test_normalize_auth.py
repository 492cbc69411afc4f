"""Authentication-Results, DKIM verification, signed/encrypted markers and the risk note."""

from __future__ import annotations

import base64
from collections.abc import Callable

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from syncer.mime.auth import org_domain, parse_auth_results
from syncer.mime.normalize import normalize
from tests.mail_samples import mail

SELECTOR, DOMAIN = b"test", b"example.com"


@pytest.fixture(scope="module")
def dkim_key() -> tuple[bytes, bytes]:
    """(private key PEM, DNS TXT record) of a locally generated RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def _dns(record: bytes) -> Callable[..., bytes | None]:
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return (
            record
            if name == b"test._domainkey.example.com." or name == b"test._domainkey.example.com"
            else None
        )

    return lookup


def _signed(private: bytes) -> bytes:
    message = (
        b"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\n"
        b"Subject: Signed in the test\r\nDate: Mon, 02 Dec 2024 10:15:00 +0100\r\n"
        b"Message-ID: <dkim@example.com>\r\n\r\nThe body that is signed.\r\n"
    )
    signature: bytes = dkim.sign(
        message, SELECTOR, DOMAIN, private, include_headers=[b"from", b"to", b"subject", b"date"]
    )
    return signature + message


def test_a_message_signed_with_a_generated_key_verifies_as_pass(
    dkim_key: tuple[bytes, bytes],
) -> None:
    private, record = dkim_key
    result = normalize(_signed(private), verify_dkim=True, dns=_dns(record))
    assert result.dkim_verified == "pass"
    assert not result.suspicious


def test_the_same_message_with_one_body_byte_changed_fails(dkim_key: tuple[bytes, bytes]) -> None:
    private, record = dkim_key
    tampered = _signed(private).replace(b"The body that is signed.", b"The body that is signeD.")
    result = normalize(tampered, verify_dkim=True, dns=_dns(record))
    assert result.dkim_verified == "fail"
    assert result.suspicious and "DKIM signature does not verify" in result.risk


def test_dkim_without_a_signature_or_a_key() -> None:
    assert (
        normalize(mail("01-plain-ascii"), verify_dkim=True, dns=_dns(b"")).dkim_verified == "none"
    )


def test_dkim_when_the_key_is_not_published(dkim_key: tuple[bytes, bytes]) -> None:
    private, _record = dkim_key
    result = normalize(_signed(private), verify_dkim=True, dns=lambda name, timeout=5: None)
    assert result.dkim_verified in ("permerror", "temperror", "fail")
    assert result.status == "ok"


def test_dkim_is_not_checked_unless_asked() -> None:
    assert normalize(mail("86-auth-results-pass")).dkim_verified is None


def test_the_receiving_servers_verdicts_are_read() -> None:
    auth = normalize(mail("86-auth-results-pass")).auth
    assert (auth.spf, auth.dkim, auth.dmarc, auth.authserv_id) == (
        "pass",
        "pass",
        "pass",
        "mx.example.org",
    )


def test_only_the_topmost_authentication_results_is_trusted() -> None:
    result = normalize(mail("87-auth-results-fail-phishing"))
    assert (result.auth.spf, result.auth.dkim, result.auth.dmarc) == ("fail", "none", "fail")


def test_received_spf_is_the_fallback_for_spf() -> None:
    result = normalize(mail("88-received-spf-only"))
    assert result.auth.spf == "softfail"
    assert not result.suspicious and result.risk == ("SPF softfail",)


def test_parse_auth_results_reads_comments_versions_and_several_signatures() -> None:
    auth = parse_auth_results(
        [
            "mx.example.org 1; dkim=fail (bad sig) header.d=a.example; "
            "dkim=pass header.d=b.example; spf/1=neutral (comment; with semicolon) smtp.mailfrom=x"
        ]
    )
    assert (auth.dkim, auth.spf, auth.dmarc) == ("pass", "neutral", None)
    assert parse_auth_results([]).spf is None


def test_a_phishing_message_is_suspicious_for_every_reason_it_has() -> None:
    result = normalize(mail("87-auth-results-fail-phishing"))
    assert result.suspicious
    assert result.risk[:4] == (
        "DMARC fail",
        "SPF fail",
        "From display name shows service@bank.example but the address is "
        "security@bank-login.example",
        "Reply-To on another domain (collector.example, From bank-login.example)",
    )
    assert "Return-Path on another domain" in result.risk[4]
    assert result.risk_note is not None and result.risk_note.startswith("DMARC fail; SPF fail")


def test_reply_to_and_return_path_in_the_senders_own_organisation_are_fine() -> None:
    result = normalize(mail("89-reply-to-same-org"))
    assert (result.suspicious, result.risk) == (False, ())


def test_org_domain_heuristic() -> None:
    assert org_domain("mail.example.co.uk") == "example.co.uk"
    assert org_domain("a.b.example.com") == "example.com"
    assert org_domain("localhost") == "localhost"
    assert org_domain(None) is None


@pytest.mark.parametrize(
    ("name", "signed", "encrypted", "scheme", "text"),
    [
        ("80-smime-signed", True, False, "smime", "Signed words."),
        ("81-smime-encrypted", False, True, "smime", ""),
        ("82-pgp-mime-signed", True, False, "pgp-mime", "PGP signed words."),
        ("83-pgp-mime-encrypted", False, True, "pgp-mime", ""),
        ("84-inline-pgp-signed", True, False, "pgp-inline", "Clear-signed words."),
        ("85-inline-pgp-encrypted", False, True, "pgp-inline", "Hi, see below."),
    ],
)
def test_signed_and_encrypted_messages_are_recognised_and_ciphertext_is_not_indexed(
    name: str, signed: bool, encrypted: bool, scheme: str, text: str
) -> None:
    result = normalize(mail(name))
    assert (result.signed, result.encrypted, result.security, result.text) == (
        signed,
        encrypted,
        scheme,
        text,
    )
    assert "secret" not in result.text


def test_encrypted_content_is_archived_as_an_attachment() -> None:
    (p7m,) = normalize(mail("81-smime-encrypted")).attachments
    assert (p7m.filename, p7m.size) == ("smime.p7m", 800)


def test_signatures_do_not_count_as_attachments() -> None:
    assert not normalize(mail("80-smime-signed")).has_attachments
