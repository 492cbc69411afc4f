"""Where tokens are kept: the 0600 JSON file (atomic, shared by accounts) and the keyring."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncer.oauth.endpoint import Tokens
from syncer.oauth.errors import OAuthError
from syncer.oauth.store import KEYRING_SERVICE, FileTokenStore, KeyringTokenStore

TOKENS = Tokens(access_token="at-1", refresh_token="rt-1", expires_at=2e9, obtained_at=1e9)


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)  # the most permissive: the file must be 0600 anyway
    yield
    os.umask(old)


def test_the_token_file_is_created_0600_whatever_the_umask(
    tmp_path: Path, open_umask: None
) -> None:
    path = tmp_path / "state" / "oauth2-tokens.json"
    FileTokenStore(path).save("account:work", TOKENS)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700  # a folder syncer had to make
    assert sorted(p.name for p in path.parent.iterdir()) == [
        ".oauth2-tokens.json.lock",
        "oauth2-tokens.json",
    ]  # no temporary file left behind


def test_a_world_readable_file_is_replaced_by_a_0600_one_on_the_next_write(
    tmp_path: Path, open_umask: None
) -> None:
    path = tmp_path / "tokens.json"
    path.write_text('{"version": 1, "tokens": {}}')
    path.chmod(0o644)
    FileTokenStore(path).save("account:work", TOKENS)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_entries_of_several_accounts_share_the_file(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens.json")
    store.save("account:work", TOKENS)
    store.save("smtp:out", Tokens(access_token="at-2"))
    assert store.load("account:work") == TOKENS
    assert store.load("smtp:out") == Tokens(access_token="at-2")
    assert store.delete("account:work") is True
    assert store.delete("account:work") is False
    assert store.load("account:work") is None
    assert json.loads((tmp_path / "tokens.json").read_text())["tokens"].keys() == {"smtp:out"}


def test_a_missing_file_means_not_signed_in(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "none.json")
    assert store.load("account:work") is None
    assert store.delete("account:work") is False


def test_a_damaged_file_says_how_to_recover(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text("{not json")
    with pytest.raises(OAuthError, match="not valid JSON") as info:
        FileTokenStore(path).load("account:work")
    assert "syncer auth login" in (info.value.hint or "")


def test_tokens_never_show_in_a_repr() -> None:
    assert "at-1" not in repr(TOKENS) and "rt-1" not in repr(TOKENS)


# A real keyring (Secret Service over D-Bus, macOS Keychain) cannot run on this test
# machine: there is no desktop session. This backend keeps the entries in a JSON file
# and implements the same keyring API, so KeyringTokenStore is exercised through the
# real `keyring` package, only the storage behind it differs.
pytest.importorskip("keyring")
import keyring  # noqa: E402
import keyring.backend  # noqa: E402
import keyring.errors  # noqa: E402


class _FileKeyring(keyring.backend.KeyringBackend):
    priority = 1

    def __init__(self, path: Path) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # keyring's __init__ is unannotated
        self.path = path

    def _all(self) -> dict[str, str]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._all().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._all()
        data[f"{service}/{username}"] = password
        self.path.write_text(json.dumps(data))

    def delete_password(self, service: str, username: str) -> None:
        data = self._all()
        if data.pop(f"{service}/{username}", None) is None:
            raise keyring.errors.PasswordDeleteError(username)
        self.path.write_text(json.dumps(data))


@pytest.fixture
def file_keyring(tmp_path: Path) -> Iterator[_FileKeyring]:
    previous = keyring.get_keyring()
    backend = _FileKeyring(tmp_path / "keyring.json")
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def test_the_keyring_store_keeps_each_entry_under_the_syncer_service(
    file_keyring: _FileKeyring,
) -> None:
    store = KeyringTokenStore()
    store.save("account:work", TOKENS)
    assert store.load("account:work") == TOKENS
    assert f"{KEYRING_SERVICE}/account:work" in file_keyring._all()
    assert store.delete("account:work") is True
    assert store.delete("account:work") is False
    assert store.load("account:work") is None
