"""Test-session wiring: real servers come from the fixture plugins listed here.

Each server fixture starts the real thing (Dovecot, PostgreSQL) on free loopback
ports in a temporary directory. When a server binary is missing the tests that
need it fail with the Debian package to install, unless
SYNCER_SKIP_SERVER_TESTS=1 is set; they never skip silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = [
    "tests.fixtures_postgres",
    "tests.fixtures_dovecot",
    "tests.fixtures_servers",
    "tests.fixtures_smtp",
]

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("deterministic", derandomize=True, max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's SYNCER_* settings (the skip switch excepted)."""
    for key in list(os.environ):
        if key.startswith("SYNCER_") and key != "SYNCER_SKIP_SERVER_TESTS":
            monkeypatch.delenv(key)
    yield
