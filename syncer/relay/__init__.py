"""Outgoing mail: the SMTP client that digests and forwards are sent through.

A protocol adapter like ``syncer.sources``: it speaks SMTP and knows nothing of
the archive or the configuration file; what to send and the outbox that makes
sending idempotent live above it.
"""
