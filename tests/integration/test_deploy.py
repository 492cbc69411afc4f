"""deploy/: the systemd units pass `systemd-analyze verify`, and the container files say
what deploy/README.md promises (non-root, volumes, `syncer run`, PostgreSQL + two workers).

`systemd-analyze` comes with Debian's ``systemd`` package (installed by ``make test``);
where it is missing the unit test is skipped, saying so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from syncer.config.schema import load_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = ("syncer.service", "syncer-sync.service", "syncer-sync.timer")


def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip(
            "systemd-analyze is not installed (Debian package: systemd); "
            "the unit files were not verified"
        )
    # verify insists that ExecStart's program exists: point the units at a stand-in.
    stand_in = tmp_path / "syncer"
    stand_in.write_text("#!/bin/sh\nexit 0\n")
    stand_in.chmod(0o755)
    paths = []
    for name in UNITS:
        text = (DEPLOY / name).read_text()
        assert "/usr/local/bin/syncer" in text or name.endswith(".timer")
        (tmp_path / name).write_text(text.replace("/usr/local/bin/syncer", str(stand_in)))
        paths.append(str(tmp_path / name))
    result = subprocess.run(
        [analyze, "verify", "--man=no", *paths], capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    ours = [line for line in output.splitlines() if any(name in line for name in UNITS)]
    assert result.returncode == 0 and not ours, output


def _directives(name: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in (DEPLOY / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def test_the_daemon_unit_is_hardened_and_the_timer_runs_once_nightly() -> None:
    daemon = _directives("syncer.service")
    assert daemon["ExecStart"][0].endswith(" run")
    assert daemon["User"] == ["syncer"] and daemon["Restart"] == ["on-failure"]
    assert daemon["ProtectSystem"] == ["strict"] and daemon["NoNewPrivileges"] == ["yes"]
    assert daemon["ReadWritePaths"] == ["/var/lib/syncer"]
    assert daemon["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    once = _directives("syncer-sync.service")
    assert once["ExecStart"][0].endswith(" run --once") and once["Type"] == ["oneshot"]
    assert once["ProtectSystem"] == ["strict"] and once["NoNewPrivileges"] == ["yes"]
    timer = _directives("syncer-sync.timer")
    assert re.fullmatch(r"\*-\*-\* \d\d:\d\d:\d\d", timer["OnCalendar"][0])


def test_the_container_image_runs_syncer_run_as_a_user_with_config_and_data_volumes() -> None:
    text = (DEPLOY / "Containerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert re.search(r'^VOLUME \["/config", "/data"\]$', text, re.M)
    (user,) = re.findall(r"^USER (\S+)$", text, re.M)
    assert not user.startswith(("root", "0"))
    assert re.search(r'^ENTRYPOINT \["syncer", "run"\]$', text, re.M)


def test_the_compose_file_has_postgresql_and_two_workers_on_a_valid_config() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    services = re.findall(r"^  ([\w-]+):$", text.split("\nservices:\n", 1)[1], re.M)
    assert {"db", "worker-1", "worker-2"} <= set(services)
    assert "image: docker.io/library/postgres:" in text
    assert "SYNCER_WORKER: worker-1" in text and "SYNCER_WORKER: worker-2" in text
    config = load_config(DEPLOY / "compose" / "syncer.toml")
    assert config.archive.url.startswith("postgresql://syncer@db/")
    assert ":" not in config.archive.url.split("//", 1)[1].split("@", 1)[0], "no password"
    assert config.metrics.address == ("0.0.0.0", 9108)


def test_the_deploy_readme_explains_every_file() -> None:
    readme = (DEPLOY / "README.md").read_text()
    files = [p.relative_to(DEPLOY).as_posix() for p in DEPLOY.rglob("*") if p.is_file()]
    for name in files:
        if name != "README.md":
            assert name in readme, f"deploy/{name} is not explained in deploy/README.md"
