"""Where refresh tokens live between runs: a 0600 JSON file, or the system keyring.

Why the care: a refresh token is as good as the account's password for as
long as it lives. The file is therefore never readable by anyone else, not
even for an instant: every write goes to a new file opened with
``os.open(..., 0o600)`` (the umask can only take bits away) and is then
renamed over the old one, so a reader sees the old or the new content, never
half of one. Several accounts (and several ``syncer run`` threads) share one
file; writers take an exclusive ``flock`` on a lock file beside it and
re-read the file under the lock, so no update is lost.

The keyring store (``token_store = "keyring"``) keeps each entry under the
service ``syncer-oauth2``; it needs the optional ``keyring`` package
(``pip install 'syncer-mail[keyring]'``).

Public API: :class:`TokenStore`, :class:`FileTokenStore`, :class:`KeyringTokenStore`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import structlog

from syncer.errors import ConfigError
from syncer.oauth.endpoint import Tokens
from syncer.oauth.errors import OAuthError

log = structlog.get_logger(__name__)

#: The keyring service name every entry is stored under.
KEYRING_SERVICE = "syncer-oauth2"


class TokenStore(Protocol):
    """Tokens by key (``account:work``, ``smtp:relay``)."""

    #: Where the tokens are, for messages (a path, or "the system keyring").
    where: str

    def load(self, key: str) -> Tokens | None: ...

    def save(self, key: str, tokens: Tokens) -> None: ...

    def delete(self, key: str) -> bool: ...


class FileTokenStore:
    """A JSON file ``{"version": 1, "tokens": {key: {...}}}``, mode 0600, written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def load(self, key: str) -> Tokens | None:
        entry = self._read().get(key)
        return Tokens.from_dict(entry) if isinstance(entry, dict) else None

    def save(self, key: str, tokens: Tokens) -> None:
        with self._locked():
            entries = self._read()
            entries[key] = tokens.as_dict()
            self._write(entries)
        log.debug("oauth.tokens_stored", key=key, store="file", path=str(self.path))

    def delete(self, key: str) -> bool:
        if not self.path.exists():
            return False
        with self._locked():
            entries = self._read()
            found = entries.pop(key, None) is not None
            if found:
                self._write(entries)
        return found

    def _read(self) -> dict[str, Any]:
        try:
            raw = self.path.read_bytes()
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise OAuthError(
                f"Cannot read the OAuth2 token file {self.path} ({exc.strerror})."
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("oauth.token_file_exposed", path=str(self.path), mode=oct(mode & 0o777))
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise OAuthError(
                f"The OAuth2 token file {self.path} is not valid JSON.",
                hint="Delete it and run `syncer auth login` for each account again.",
            ) from None
        tokens = data.get("tokens") if isinstance(data, dict) else None
        return dict(tokens) if isinstance(tokens, dict) else {}

    def _write(self, entries: dict[str, Any]) -> None:
        data = json.dumps({"version": 1, "tokens": entries}, indent=2, sort_keys=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # a leftover of a crash; O_EXCL below must not trip over it
        # O_EXCL: never reuse a file someone else may have made readable.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        with contextlib.suppress(OSError):
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            lock = os.open(
                self.path.with_name(f".{self.path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600
            )
        except OSError as exc:
            raise OAuthError(
                f"Cannot write the OAuth2 token file {self.path} ({exc.strerror}).",
                hint="Check the folder and its permissions, or set token_file.",
            ) from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
        finally:
            os.close(lock)  # closing releases the lock


class KeyringTokenStore:
    """The system keyring (Secret Service, macOS Keychain, Windows Credential Locker...)."""

    where = "the system keyring"

    def __init__(self) -> None:
        try:
            import keyring
        except ImportError:
            raise ConfigError(
                'token_store = "keyring" needs the keyring package.',
                hint="Install it with: pip install 'syncer-mail[keyring]' (or use token_store = "
                '"file").',
            ) from None
        self._keyring: Any = keyring

    def load(self, key: str) -> Tokens | None:
        raw = self._call("read", self._keyring.get_password, KEYRING_SERVICE, key)
        if not raw:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        return Tokens.from_dict(data) if isinstance(data, dict) else None

    def save(self, key: str, tokens: Tokens) -> None:
        self._call(
            "write", self._keyring.set_password, KEYRING_SERVICE, key, json.dumps(tokens.as_dict())
        )
        log.debug("oauth.tokens_stored", key=key, store="keyring")

    def delete(self, key: str) -> bool:
        from keyring.errors import PasswordDeleteError

        try:
            self._keyring.delete_password(KEYRING_SERVICE, key)
        except PasswordDeleteError:
            return False
        return True

    def _call(self, what: str, func: Any, *args: str) -> Any:
        from keyring.errors import KeyringError

        try:
            return func(*args)
        except KeyringError as exc:
            raise OAuthError(
                f"Cannot {what} the OAuth2 tokens in the system keyring ({type(exc).__name__}).",
                hint='Check that a keyring service runs, or use token_store = "file".',
            ) from None
