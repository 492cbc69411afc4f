"""What ``syncer status`` shows of push mode, read from the archive.

Why a module of its own: :mod:`syncer.daemon.push` runs the watchers and their
syncs (IMAP connections, the sync pipeline, normalization); ``status`` only reads
the state the daemon recorded and the leases, and should not import all that to
print a table.

Public API: :func:`push_status`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syncer.archive.store import ArchiveStore
    from syncer.config.schema import Config


def push_status(config: Config, store: ArchiveStore) -> list[dict[str, Any]]:
    """Per IMAP account: whether push is configured, and what the daemon last recorded
    (``state``: connected, down, unsupported, elsewhere, stopped; ``mode``: notify or
    idle; ``since``), reported as ``not running`` when no live worker holds the
    account's push lease (the daemon is stopped or was killed)."""
    states = store.push_states()
    live = {lease.name for lease in store.leases() if not lease.expired}
    result = []
    for account in config.accounts:
        if account.protocol != "imap":
            continue
        state = states.get(account.name, {})
        running = f"push:{account.name}" in live or state.get("state") == "unsupported"
        result.append(
            {
                "account": account.name,
                "push": "off" if account.push is False else "on" if account.push else "auto",
                "state": state.get("state") if running else "not running",
                "mode": state.get("mode") if running else None,
                "since": state.get("since") if running else None,
                "holder": state.get("holder") if running else None,
                "folders": state.get("folders") if running else None,
                "error": state.get("error") if running else None,
            }
        )
    return result
