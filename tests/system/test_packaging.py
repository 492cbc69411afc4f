"""What `pip install syncer-mail` gets: the distribution's name, metadata and files."""

from __future__ import annotations

import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from syncer.config.starter import example_text

pytestmark = pytest.mark.slow


def test_the_wheel_is_syncer_mail_and_ships_the_example_configuration(wheel: Path) -> None:
    assert wheel.name.startswith("syncer_mail-")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        example = archive.read("syncer/config/examples/syncer.example.toml").decode()
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
        entry_points = archive.read(metadata_name.replace("METADATA", "entry_points.txt"))
    assert example == example_text()
    assert metadata["Name"] == "syncer-mail"
    assert any(
        c.startswith("Topic :: Communications :: Email") for c in metadata.get_all("Classifier", [])
    )
    assert {u.split(",")[0] for u in metadata.get_all("Project-URL", [])} >= {"Homepage", "Issues"}
    assert b"syncer = syncer.cli.app:main" in entry_points
    assert "syncer/archive/migrations/script.py.mako" in names
