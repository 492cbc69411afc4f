"""Users, roles, tokens and sign-in lockouts in the archive, and `syncer user`.

On SQLite and PostgreSQL (``archive_store``): what the store keeps is what the
web archive relies on to decide who sees what, and every change is audited.
"""

from __future__ import annotations

import pytest

from syncer.archive.store import ArchiveStore
from syncer.errors import UsageError
from syncer.web.auth import FAILED, MAX_FAILURES, hash_password, new_token, sign_in, token_digest


def test_users_are_stored_with_grants_and_audited(archive_store: ArchiveStore) -> None:
    archive_store.add_user("ann", "reader", hash_password("secret-1"), ("work", "home"), actor="t")
    archive_store.add_user("bob", "admin", hash_password("secret-2"), actor="t")
    ann = archive_store.user("ann")
    assert ann is not None and ann.accounts == ("home", "work") and not ann.sees_all
    assert [u.name for u in archive_store.users()] == ["ann", "bob"]
    with pytest.raises(UsageError, match="exists already"):
        archive_store.add_user("ann", "reader", None, actor="t")
    with pytest.raises(UsageError, match="Unknown role"):
        archive_store.add_user("cy", "boss", None, actor="t")
    token = new_token()
    archive_store.add_token("ann", token_digest(token), actor="t")
    found = archive_store.user_by_token(token_digest(token))
    assert found is not None and found.name == "ann"
    archive_store.remove_user("ann", actor="t")
    assert archive_store.user_by_token(token_digest(token)) is None
    with pytest.raises(UsageError, match="Users: bob"):
        archive_store.remove_user("ann", actor="t")
    kinds = [e.kind for e in archive_store.audit_events()]
    assert kinds == ["user.added", "user.added", "user.token_added", "user.removed"]
    assert "secret" not in str(archive_store.audit_events())
    assert archive_store.audit_verify().ok


def test_ten_failures_lock_any_name_the_same_way(archive_store: ArchiveStore) -> None:
    archive_store.add_user("ann", "reader", hash_password("right-password"), actor="t")
    for name in ("ann", "nobody"):
        answers = [
            sign_in(archive_store, name, "wrong-password", client="t").message
            for _ in range(MAX_FAILURES)
        ]
        assert answers == [FAILED] * MAX_FAILURES
        assert archive_store.login_state(name).locked_until is not None
    locked = sign_in(archive_store, "ann", "right-password", client="t")
    assert locked.user is None and locked.message == FAILED
    sign_in(archive_store, "ann", "wrong-password", client="t")  # a failure while locked
    assert archive_store.login_state("ann").locked_until is not None
    archive_store.set_password("ann", hash_password("new-password"), actor="t")
    assert sign_in(archive_store, "ann", "new-password", client="t").user is not None
    assert archive_store.audit_verify().ok
