"""Outgoing mail: the SMTP client that digests and forwards are sent through.

A protocol adapter like ``syncer.sources``: it speaks SMTP and knows nothing of
the archive or the configuration file; what to send and the outbox that makes
sending idempotent live above it.

- :mod:`syncer.smtp.client`: :class:`~syncer.smtp.client.SMTPRelay`, the smtplib
  client (TLS, AUTH, replies classified as transient or permanent).
- :mod:`syncer.relay.compose`: forwards built from raw bytes (redirect, attach)
  and the loop marker; pure.
- :mod:`syncer.relay.render`: digest messages rendered from the Jinja2
  templates in ``syncer/relay/templates/``; pure.

Above the package: :mod:`syncer.relay.digests`, :mod:`syncer.relay.forwards` and
:mod:`syncer.relay.outbox` join it with the archive; :mod:`syncer.daemon.relay_jobs` holds
the ``digest:<name>`` and ``outbox`` jobs of ``syncer run``.
"""
