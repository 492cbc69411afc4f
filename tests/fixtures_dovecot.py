"""Dovecot fixtures (filled in by the server-harness work)."""

from __future__ import annotations
