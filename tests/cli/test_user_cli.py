"""`syncer user add|list|passwd|token|remove`: passwords from stdin, tokens shown once."""

from __future__ import annotations

from click.testing import CliRunner

from syncer.archive.store import ArchiveStore
from syncer.cli.app import main
from syncer.web.auth import token_digest
from tests.cli.conftest import Syncer


def test_user_commands(syncer_cli: Syncer) -> None:
    assert syncer_cli("init").exit_code == 0
    runner_input = "a-long-password\n"

    def run(*args: str, stdin: str | None = None) -> str:
        result = CliRunner().invoke(
            main, ["--config", str(syncer_cli.config_path), *args], input=stdin
        )
        assert result.exit_code == 0, result.output
        return result.stdout

    run(
        "user",
        "add",
        "ann",
        "--role",
        "reader",
        "--account",
        "work",
        "--password-stdin",
        stdin=runner_input,
    )
    listed = syncer_cli.json("user", "list")
    assert listed[0]["name"] == "ann" and listed[0]["accounts"] == ["work"]
    token = run("user", "token", "ann").strip()
    assert token.startswith("syn_")
    with ArchiveStore.open(f"sqlite:///{syncer_cli.tmp_path}/archive.db") as store:
        user = store.user_by_token(token_digest(token))
        assert user is not None and user.name == "ann"
        assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
    run("user", "passwd", "ann", "--password-stdin", stdin="another-password\n")
    short = CliRunner().invoke(
        main,
        ["--config", str(syncer_cli.config_path), "user", "passwd", "ann", "--password-stdin"],
        input="short\n",
    )
    assert short.exit_code == 2 and "at least 8" in short.output
    run("user", "remove", "ann")
    gone = syncer_cli("user", "remove", "ann")
    assert gone.exit_code == 2 and "No user named 'ann'" in gone.output
