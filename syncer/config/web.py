"""The ``[web]`` section: how ``syncer serve`` (and ``syncer run`` with ``enabled``) serves
the web archive.

Keys:

* ``enabled``: ``syncer run`` serves the web archive too (``syncer serve`` always does).
* ``listen``: ``"host:port"`` (default ``127.0.0.1:8080``; put a TLS reverse proxy in
  front, see ``deploy/``, or give ``cert``/``key``).
* ``cert``, ``key``: serve HTTPS directly with these PEM files.
* ``session_secret_env`` / ``_file`` / ``_command``: the key that signs session
  cookies, from a secret source like every password. Without one a random key is
  made at start-up, so sign-ins do not survive a restart.
* ``trusted_proxies``: addresses of reverse proxies whose ``X-Forwarded-For`` and
  ``X-Forwarded-Proto`` are believed (and whose ``sso_header`` signs users in).
* ``sso_header``: single sign-on by a trusted reverse proxy: the name of the header
  that carries the signed-in user's name (e.g. ``X-Remote-User``). Off by default;
  honoured only on requests from ``trusted_proxies``; the user must exist.
* ``base_url``: the public URL (``https://archive.example.com/``); an ``https`` one
  makes cookies ``Secure``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from syncer.config.base import Strict

__all__ = ["WebConfig"]


class WebConfig(Strict):
    """The ``[web]`` table; see the module docstring."""

    enabled: bool = False
    listen: str = "127.0.0.1:8080"
    cert: Path | None = None
    key: Path | None = None
    session_secret_env: str | None = None
    session_secret_file: Path | None = None
    session_secret_command: list[str] | None = None
    trusted_proxies: list[str] = Field(default_factory=list)
    sso_header: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]+$")
    base_url: str | None = Field(default=None, pattern=r"^https?://")

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f'expected "host:port", e.g. "127.0.0.1:8080" (got {value!r})')
        return value

    @model_validator(mode="after")
    def _rules(self) -> WebConfig:
        if (self.cert is None) != (self.key is None):
            raise ValueError("cert and key go together; give both or neither")
        sources = [
            k
            for k in ("session_secret_env", "session_secret_file", "session_secret_command")
            if getattr(self, k) is not None
        ]
        if len(sources) > 1:
            raise ValueError(f"two session secret sources given ({', '.join(sources)}); keep one")
        if self.sso_header is not None and not self.trusted_proxies:
            raise ValueError(
                "sso_header needs trusted_proxies: a header from anyone else would let them "
                "sign in as anybody"
            )
        return self

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) to bind, brackets of an IPv6 literal removed."""
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def has_session_secret(self) -> bool:
        return any(
            getattr(self, k) is not None
            for k in ("session_secret_env", "session_secret_file", "session_secret_command")
        )
