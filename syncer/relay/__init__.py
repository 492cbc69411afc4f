"""Outgoing mail: the SMTP client that digests and forwards are sent through.

A protocol adapter like ``syncer.sources``: it speaks SMTP and knows nothing of
the archive or the configuration file; what to send and the outbox that makes
sending idempotent live above it.

- :mod:`syncer.relay.smtp`: :class:`~syncer.relay.smtp.SMTPRelay`, the smtplib
  client (TLS, AUTH, replies classified as transient or permanent).
- :mod:`syncer.relay.compose`: forwards built from raw bytes (redirect, attach)
  and the loop marker; pure.
- :mod:`syncer.relay.digest`: digest messages rendered from the Jinja2
  templates in ``syncer/templates/``; pure.

Above the package: :mod:`syncer.digests`, :mod:`syncer.forwards` and
:mod:`syncer.outbox` join it with the archive; :mod:`syncer.relay_jobs` holds
the ``digest:<name>`` and ``outbox`` jobs of ``syncer run``.
"""
