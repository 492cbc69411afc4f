"""Log lines never carry a secret, whatever shape it arrives in."""

from __future__ import annotations

from syncer.logs import redact_processor, redact_text, register_secret


def test_secret_keys_are_masked() -> None:
    event = redact_processor(None, "info", {"event": "x", "password": "p4ss", "token": "t0k"})
    assert event == {"event": "x", "password": "***", "token": "***"}


def test_secret_shaped_text_is_masked() -> None:
    assert redact_text("login with password=hunter2 ok") == "login with password=*** ok"
    assert redact_text("Authorization: Bearer abc.def") == "Authorization: Bearer ***"


def test_registered_secrets_are_masked_anywhere() -> None:
    register_secret("correct horse battery")
    event = redact_processor(None, "info", {"event": "x", "detail": ["a correct horse battery b"]})
    assert event["detail"] == ["a *** b"]
