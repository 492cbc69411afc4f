"""Throwaway TLS material for the test servers, made with ``trustme``.

Real servers in the test suite (Dovecot, SMTP) speak TLS with a certificate
from a CA that exists only for one test session. The server certificate names
``localhost`` and nothing else: no IP address SAN. A client that verifies and
connects by the name ``localhost`` succeeds; a verifying client that connects
to ``127.0.0.1`` gets a hostname mismatch, which is how the suite checks that
syncer refuses a certificate that does not match the host it dialled.

Public API: :class:`TLSFiles`, :func:`make_tls_files`.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

#: The only name the server certificate is valid for.
SERVER_HOSTNAME = "localhost"


@dataclass(frozen=True, slots=True)
class TLSFiles:
    """PEM files of one throwaway CA and the server certificate it signed."""

    ca: Path  # the CA certificate clients trust
    cert: Path  # server certificate chain (leaf first)
    key: Path  # server private key (unencrypted)

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only the test CA."""
        return ssl.create_default_context(cafile=str(self.ca))


def make_tls_files(directory: Path) -> TLSFiles:
    """Write ``ca.pem``, ``cert.pem`` and ``key.pem`` into *directory*.

    The files are world-readable: Dovecot reads them as root when it starts,
    but other servers in the suite may not run as root.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    # "localhost" only; an IP SAN here would defeat the hostname-mismatch tests.
    leaf = ca.issue_cert(SERVER_HOSTNAME)
    files = TLSFiles(
        ca=directory / "ca.pem", cert=directory / "cert.pem", key=directory / "key.pem"
    )
    ca.cert_pem.write_to_path(str(files.ca))
    leaf.cert_chain_pems[0].write_to_path(str(files.cert))
    for blob in leaf.cert_chain_pems[1:]:
        blob.write_to_path(str(files.cert), append=True)
    leaf.private_key_pem.write_to_path(str(files.key))
    for path in (files.ca, files.cert, files.key):
        os.chmod(path, 0o644)
    return files
