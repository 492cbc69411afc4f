"""A CliRunner wrapper that writes a configuration into tmp_path and runs `syncer`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from syncer.cli.app import main


@dataclass
class Syncer:
    tmp_path: Path
    config_path: Path

    def write_config(self, text: str) -> Path:
        self.config_path.write_text(text, encoding="utf-8")
        return self.config_path

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(
            main, ["--config", str(self.config_path), *args], env=env, catch_exceptions=False
        )

    def json(self, *args: str, env: dict[str, str] | None = None) -> Any:
        result = self(*args, "--json", env=env)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def syncer_cli(tmp_path: Path) -> Syncer:
    cli = Syncer(tmp_path, tmp_path / "syncer.toml")
    cli.write_config('[archive]\nurl = "sqlite:///archive.db"\n')
    return cli


ConfigWriter = Callable[[str], Path]
