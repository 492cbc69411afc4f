"""Gmail labels as folders, for ``export --labels folders`` and ``push``.

Why: at Gmail a label *is* a folder to the user, and IMAP shows one message in
All Mail and again in one folder per label. Copied as they are, a migration
would carry every message once per folder it appears in, named by however the
source server spelled its label folders. Here the archive's label data decides
instead: a message that has labels goes to one folder per label (named by the
label; nested labels ``Work/Projects`` keep their hierarchy), a Gmail message
without any stays in All Mail, and every non-Gmail placement is left alone.

System labels: ``\\Inbox`` becomes INBOX, ``\\Sent`` and ``\\Draft`` the target's
Sent and Drafts (by SPECIAL-USE); ``\\Important`` and ``\\Starred`` are not folders
(Starred is the ``\\Flagged`` flag, which every copy keeps).

Public API: :data:`LABEL_FOLDER`, :func:`label_placements`, :func:`label_folder`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from syncer.archive.store_transfer import Placement

__all__ = ["LABEL_FOLDER", "label_folder", "label_placements", "one_per_message"]

#: The key of a label's folder: never a wire name, so it cannot collide with one.
LABEL_FOLDER = "\x00label:"

_SYSTEM = {
    "\\inbox": ("INBOX", None),
    "\\sent": ("Sent", "\\Sent"),
    "\\draft": ("Drafts", "\\Drafts"),
}


def label_folder(label: str) -> tuple[str, str | None] | None:
    """``(display name, special use)`` of the folder for ``label``; None: not a folder."""
    if label.startswith("\\"):
        return _SYSTEM.get(label.lower())
    return label, None


def label_placements(placements: Iterable[Placement]) -> list[Placement]:
    """``placements`` with each labelled message's Gmail placements replaced by one per label.

    A label's placement has ``folder = LABEL_FOLDER + label`` and the label's name as
    ``display_name`` with ``/`` as delimiter; it takes the flags and INTERNALDATE of the
    message's All Mail entry where there is one.
    """
    out: list[Placement] = []
    group: list[Placement] = []
    for placement in placements:
        if group and placement.message_pk != group[0].message_pk:
            out.extend(_one_message(group))
            group = []
        group.append(placement)
    if group:
        out.extend(_one_message(group))
    return out


def one_per_message(placements: Iterable[Placement]) -> list[Placement]:
    """For a Gmail target: each labelled message once, in All Mail (its labels go by
    STORE); other placements unchanged."""
    out: list[Placement] = []
    kept: set[int] = set()
    for placement in _grouped(placements):
        if placement.labels is None:
            out.append(placement)
        elif placement.message_pk not in kept:
            kept.add(placement.message_pk)
            out.append(placement)
    return out


def _grouped(placements: Iterable[Placement]) -> list[Placement]:
    """All Mail's placement first within each message, so :func:`one_per_message` keeps it."""
    return sorted(placements, key=lambda p: (p.message_pk, p.special_use != "\\All"))


def _one_message(group: Sequence[Placement]) -> list[Placement]:
    gmail = [p for p in group if p.labels is not None]
    if not gmail:
        return list(group)
    others = [p for p in group if p.labels is None]
    base = next((p for p in gmail if p.special_use == "\\All"), gmail[0])
    labels = sorted({label for p in gmail for label in p.labels or ()})
    folders = [(label, label_folder(label)) for label in labels]
    named = [(label, where) for label, where in folders if where is not None]
    if not named:
        return [*others, base]  # in All Mail only: archived mail
    return [
        *others,
        *(
            replace(
                base,
                folder=LABEL_FOLDER + label,
                display_name=where[0],
                delimiter="/",
                special_use=where[1],
                namespace="personal",
            )
            for label, where in named
        ),
    ]
