"""What a signed-in user may see and do: the reader's query scope and the role checks.

Why this module exists: a reader must never reach another account's mail, by
any path (search, a message by id or SHA-256, its raw bytes, attachments, its
thread, an export). Every read goes through a :class:`Viewer`: searches and
exports run the user's query ANDed with ``account:A OR account:B ...`` (the
query language's own terms, so the archive applies the scope in SQL), and a
message is shown only when one of its accounts is granted. Anything refused is
answered exactly like a message that does not exist (404).
"""

from __future__ import annotations

from dataclasses import dataclass

from syncer.archive.store_users import User
from syncer.archive.views import MessageDetail
from syncer.query import And, Field, Or, Query, format_query, parse

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

    def scoped(self, query: str) -> str | None:
        """``query`` limited to what the user may see, as query text; None when nothing is.

        :raises QuerySyntaxError: for a malformed query.
        """
        parsed = parse(query)
        if self.user.sees_all:
            return format_query(parsed)
        if not self.user.accounts:
            return None
        scope: Query = (
            Field("account", self.user.accounts[0])
            if len(self.user.accounts) == 1
            else Or(tuple(Field("account", a) for a in self.user.accounts))
        )
        return format_query(And((parsed, scope)) if query.strip() else scope)

    def may_read(self, detail: MessageDetail) -> bool:
        """Whether the message is in an account the user may see."""
        return self.user.sees_all or bool(detail.accounts & set(self.user.accounts))

    def may_see_account(self, account: str) -> bool:
        return self.user.sees_all or account in self.user.accounts
