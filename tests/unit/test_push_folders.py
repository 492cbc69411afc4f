"""Where `syncer push` puts each folder on the target: INBOX, --map, special-use roles,
namespace prefixes and delimiters translated, names kept otherwise.
"""

from __future__ import annotations

import pytest

from syncer.errors import UsageError
from syncer.transfer.push_folders import (
    SourceFolder,
    TargetLayout,
    map_folders,
    parse_maps,
    source_prefix,
)


def _courier() -> list[SourceFolder]:
    """A Courier-style source: everything below ``INBOX.``, ``.`` between levels."""
    return [
        SourceFolder("INBOX", "INBOX", "."),
        SourceFolder("INBOX.Sent Items", "INBOX.Sent Items", ".", "\\Sent"),
        SourceFolder("INBOX.Deleted Items", "INBOX.Deleted Items", ".", "\\Trash"),
        SourceFolder("INBOX.Deleted Items.2023", "INBOX.Deleted Items.2023", ".", None),
        SourceFolder("INBOX.Projects.&ANw-bersicht", "INBOX.Projects.Übersicht", ".", None),
        SourceFolder("INBOX.a/b", "INBOX.a/b", ".", None),
    ]


def test_prefix_delimiter_and_roles_are_translated() -> None:
    layout = TargetLayout(
        prefix="", delimiter="/", roles={"\\sent": "Sent", "\\trash": "Papierkorb"}
    )
    assert map_folders(_courier(), layout) == {
        "INBOX": "INBOX",
        "INBOX.Sent Items": "Sent",
        "INBOX.Deleted Items": "Papierkorb",
        "INBOX.Deleted Items.2023": "Papierkorb/2023",
        "INBOX.Projects.&ANw-bersicht": "Projects/&ANw-bersicht",
        "INBOX.a/b": "a_b",
    }


def test_target_prefix_is_added_and_maps_win_over_roles() -> None:
    layout = TargetLayout(prefix="INBOX.", delimiter=".", roles={"\\sent": "INBOX.Sent"})
    source = [
        SourceFolder("INBOX", "INBOX", "/"),
        SourceFolder("Sent", "Sent", "/", "\\Sent"),
        SourceFolder("Old/Stuff", "Old/Stuff", "/"),
        SourceFolder("Old/Stuff/Deep", "Old/Stuff/Deep", "/"),
        SourceFolder("Ärger", "Ärger", "/"),
    ]
    maps = parse_maps(["Old/Stuff=Archive/Legacy", "Sent=Gesendet"])
    assert map_folders(source, layout, maps) == {
        "INBOX": "INBOX",
        "Sent": "INBOX.Gesendet",
        "Old/Stuff": "INBOX.Archive.Legacy",
        "Old/Stuff/Deep": "INBOX.Archive.Legacy.Deep",
        "Ärger": "INBOX.&AMQ-rger",
    }


def test_a_source_prefix_is_only_assumed_when_every_folder_has_it() -> None:
    assert source_prefix(_courier()) == "INBOX."
    mixed = [*_courier(), SourceFolder("Other", "Other", ".")]
    assert source_prefix(mixed) == ""


@pytest.mark.parametrize("value", ["Sent", "=New", "Old=", "/=/"])
def test_a_map_must_be_old_equals_new(value: str) -> None:
    with pytest.raises(UsageError, match="is not OLD=NEW"):
        parse_maps([value])
