"""The [[digests]], [[forwards]] and [outbox] sections: what is accepted, what is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from syncer.config.schema import parse_config
from syncer.errors import ConfigError

SMTP = {"name": "out", "host": "smtp.example.com"}
DIGEST = {
    "name": "morning",
    "schedule": "0 7 * * *",
    "smtp": "out",
    "from": "Syncer <syncer@example.com>",
    "to": "me@example.com",
}
FORWARD = {
    "name": "invoices",
    "query": "subject:invoice",
    "smtp": "out",
    "from": "s@example.com",
    "to": ["a@example.net"],
}


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, path=Path("/etc/syncer.toml"))
    return info.value.problems


def test_a_good_digest_and_forward() -> None:
    cfg = parse_config({"smtp": [SMTP], "digests": [DIGEST], "forwards": [FORWARD]})
    digest, forward = cfg.digests[0], cfg.forwards[0]
    assert digest.to == ["me@example.com"]  # one address is a list of one
    assert digest.sender == "syncer@example.com"  # bounces go to the From address by default
    assert forward.mode == "attach"
    assert cfg.outbox.delay(1) == 60 and cfg.outbox.delay(30) == 6 * 3600


def test_an_unknown_smtp_server_is_named_with_the_configured_ones() -> None:
    [problem] = problems({"smtp": [SMTP], "digests": [{**DIGEST, "smtp": "nope"}]})
    assert "digests[0] (morning).smtp: no [[smtp]] named 'nope' (configured: out)" in problem


def test_addresses_cannot_smuggle_headers() -> None:
    [problem] = problems({"smtp": [SMTP], "forwards": [{**FORWARD, "to": ["a@x.net\r\nBcc: b@y"]}]})
    assert problem.endswith(
        "forwards[0] (invoices).to[0]: an address must not contain a line break"
    )
    [problem] = problems({"smtp": [SMTP], "forwards": [{**FORWARD, "from": "nobody"}]})
    assert "is not one e-mail address" in problem


def test_bad_query_schedule_subject_and_duplicate_names() -> None:
    found = problems(
        {
            "smtp": [SMTP],
            "digests": [
                {**DIGEST, "query": "from:(", "schedule": "daily", "subject": "{{ name"},
            ],
            "forwards": [FORWARD, FORWARD],
        }
    )
    text = "\n".join(found)
    assert "digests[0] (morning).query: query 'from:(' is not valid: Malformed query" in text
    assert "digests[0] (morning).schedule: schedule 'daily' is not a cron expression" in text
    assert "digests[0] (morning).subject: subject is not a valid template" in text
    assert "the name 'invoices' is used twice" in text


def test_redirect_mode_and_retry_bounds() -> None:
    assert (
        parse_config({"smtp": [SMTP], "forwards": [{**FORWARD, "mode": "redirect"}]})
        .forwards[0]
        .mode
        == "redirect"
    )
    [problem] = problems({"outbox": {"retry_first": "1h", "retry_max": "1m"}})
    assert "retry_max (60s) is shorter than retry_first (3600s)" in problem
