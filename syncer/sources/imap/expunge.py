"""Removing chosen messages from an IMAP folder for good, and nothing else.

Why this module exists: retention frees server mailboxes of messages the
archive holds, and a plain ``EXPUNGE`` would also remove every message *another*
client had marked ``\\Deleted`` -- mail the archive may never have seen. So
only ``UID EXPUNGE`` (:rfc:`4315`, UIDPLUS) is used, which removes exactly the
UIDs named; a server without UIDPLUS gets a refusal, never a blanket EXPUNGE.

The steps, on the adapter's connection (its public
:class:`~syncer.sources.imap.session.IMAPSession`):

1. ``SELECT`` the folder read-write and check its UIDVALIDITY is the one the
   UIDs belong to (else they may name other messages: refuse).
2. ``UID STORE <set> +FLAGS.SILENT (\\Deleted)``, then ``UID EXPUNGE <set>``.
3. ``UID SEARCH UID <set>`` tells which of them are really gone.
4. ``UNSELECT`` (or, without it, ``EXAMINE`` of the same folder, which leaves
   it without expunging anything); never ``CLOSE``, which would expunge.

Public API: :func:`expunge_uids`, :class:`ExpungeUnsupported`.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from syncer.errors import SourceError, UIDValidityChanged
from syncer.sources.imap.connection import Arg, CommandFailed, astring
from syncer.sources.imap.listing import parse_search
from syncer.sources.imap.parser import Response, compress_uids
from syncer.sources.imap.qresync import SelectReader
from syncer.sources.imap.session import IMAPSession, check_ok

log = structlog.get_logger(__name__)


class ExpungeUnsupported(SourceError):
    """The server cannot remove chosen messages only (no UIDPLUS): nothing was removed."""


def expunge_uids(
    session: IMAPSession, folder: str, uidvalidity: int, uids: Iterable[int]
) -> list[int]:
    """Remove exactly ``uids`` of ``folder`` from the server; returns the UIDs now gone.

    :param session: the connection (connected here if it is not yet).
    :raises ExpungeUnsupported: when the server does not offer UIDPLUS.
    :raises UIDValidityChanged: when the folder's UIDVALIDITY is not ``uidvalidity``.
    :raises SourceError: for any other failure (nothing is known to be removed then).
    """
    wanted = sorted(set(uids))
    if not wanted:
        return []
    settings = session.settings
    label, account = settings.label, settings.account or None
    with session.map_errors(folder):
        caps = session.connect().capabilities
        if "UIDPLUS" not in caps:
            raise ExpungeUnsupported(
                f"Account {label!r}: {settings.host}:{settings.port} does not offer UIDPLUS, so "
                f"syncer cannot remove chosen messages from {folder!r} without also removing "
                "every message another client marked \\Deleted; nothing was removed.",
                account=account,
                folder=folder,
                hint="Remove expunge_server_after_days for this account's messages, or "
                "expunge by hand with a mail client.",
            )
        reader = SelectReader()

        def on_select(response: Response, _index: int) -> None:
            reader.feed(response)

        session.selected = None
        completions = session.run([[b"SELECT ", astring(folder)]], on_select)
        if completions[0].status != "OK":
            session.left()
            raise CommandFailed("SELECT", completions[0])
        # Selected read-write, but not for reading: fetches still need select().
        session.entered(None, readonly=False)
        try:
            if reader.uidvalidity != uidvalidity:
                raise UIDValidityChanged(
                    f"Account {label!r}: folder {folder!r} now has UIDVALIDITY "
                    f"{reader.uidvalidity}, not {uidvalidity}; its UIDs name other messages, "
                    "so nothing was removed.",
                    account=account,
                    folder=folder,
                    hint="Run `syncer sync` first, then apply retention again.",
                )
            sets = compress_uids(wanted)
            commands: list[list[Arg]] = []
            for uid_set in sets:
                commands.append([b"UID STORE ", uid_set, b" +FLAGS.SILENT (\\Deleted)"])
                commands.append([b"UID EXPUNGE ", uid_set])
            check_ok("UID STORE / UID EXPUNGE", session.run(commands))
            found: list[Response] = []

            def on_search(response: Response, _index: int) -> None:
                if response.text[:9].upper().startswith((b"* SEARCH", b"* ESEARCH")):
                    found.append(response)

            check_ok(
                "UID SEARCH",
                session.run([[b"UID SEARCH UID ", uid_set] for uid_set in sets], on_search),
            )
            remaining = parse_search(found) & set(wanted)
        finally:
            _leave(session, folder)
    gone = [uid for uid in wanted if uid not in remaining]
    log.info("imap.expunged", folder=folder, expunged=len(gone), remaining=len(remaining))
    return gone


def _leave(session: IMAPSession, folder: str) -> None:
    """Leave the read-write folder without expunging anything more."""
    if not session.connected:
        return
    if "UNSELECT" in session.capabilities:
        session.run([[b"UNSELECT"]])
        session.left()
    else:
        # EXAMINE switches to read-only without the implicit expunge of CLOSE (RFC 3501 6.3.1).
        session.run([[b"EXAMINE ", astring(folder)]])
        session.entered(None, readonly=True)
