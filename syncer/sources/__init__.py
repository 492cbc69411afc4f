"""Protocol adapters. Each speaks one protocol and hands ``syncer.model`` values on.

Adapters never import the archive layer, SQLAlchemy or the config module; they
receive plain values (host, port, username, password) from the composition
root (``syncer.cli.app`` / ``syncer.daemon.scheduler``).
"""

from __future__ import annotations
