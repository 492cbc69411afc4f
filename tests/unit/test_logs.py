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


def test_rotating_secrets_are_masked_and_only_the_newest_are_kept() -> None:
    # A daemon refreshing OAuth2 tokens for months must not scan every token it ever had.
    from syncer import logs

    password = "long-lived-password-4711"
    register_secret(password)
    tokens = [f"ya29.token-{n:05d}-abcdef" for n in range(logs.MAX_ROTATING_SECRETS + 10)]
    for token in tokens:
        register_secret(token, rotating=True)

    newest = tokens[-1]
    assert newest not in redact_text(f"auth with {newest} failed")
    assert password not in redact_text(f"login {password}")
    assert tokens[-logs.MAX_ROTATING_SECRETS] not in redact_text(tokens[-logs.MAX_ROTATING_SECRETS])
    assert len(logs._rotating_secrets) == logs.MAX_ROTATING_SECRETS
    assert tokens[0] not in logs._rotating_secrets
