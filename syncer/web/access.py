"""What a signed-in user may see and do: the reader's query scope and the role checks.

Why this module exists: a reader must never reach another account's mail, by
any path (search, a message by id or SHA-256, its raw bytes, attachments, its
thread, an export). Every read goes through a :class:`Viewer`: searches and
exports pass its :attr:`Viewer.accounts` to the archive's search (which
confines the query to messages in those accounts, in SQL), and a message is
shown only when one of its accounts is granted. Anything refused is answered
exactly like a message that does not exist (404).
"""

from __future__ import annotations

from dataclasses import dataclass

from syncer.archive.store_users import User
from syncer.archive.views import MessageDetail

__all__ = ["Viewer"]


@dataclass(frozen=True, slots=True)
class Viewer:
    """The user behind a request, and how they signed in (``session``, ``token``, ``sso``)."""

    user: User
    via: str

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def role(self) -> str:
        return self.user.role

    @property
    def is_admin(self) -> bool:
        return self.user.role == "admin"

    @property
    def is_auditor(self) -> bool:
        """Auditors and admins read the audit trail."""
        return self.user.role in ("auditor", "admin")

    @property
    def accounts(self) -> tuple[str, ...] | None:
        """The accounts the user's searches and exports are confined to; None: every one."""
        return None if self.user.sees_all else self.user.accounts

    def may_read(self, detail: MessageDetail) -> bool:
        """Whether the message is in an account the user may see."""
        return self.user.sees_all or bool(detail.accounts & set(self.user.accounts))

    def may_see_account(self, account: str) -> bool:
        return self.user.sees_all or account in self.user.accounts
