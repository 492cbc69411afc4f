"""PostgreSQL fixtures (filled in by the archive work)."""

from __future__ import annotations
