"""Golden test: every field the normalizer derives stays what the previous normalizer derived.

The fixture (tests/data/golden/normalized.json.gz) was written by the
normalizer before issue 17's rewrite; tests/golden.py says how to regenerate it
for a deliberate change.
"""

from __future__ import annotations

from tests.golden import derive, load


def test_every_field_of_every_golden_message_is_unchanged() -> None:
    expected = load()
    derived = derive()
    assert sorted(derived) == sorted(expected)
    differences = [
        f"{name}: {field}: {expected[name][field]!r} -> {derived[name].get(field)!r}"
        for name in sorted(expected)
        for field in expected[name]
        if derived[name].get(field) != expected[name][field]
    ]
    assert not differences, "\n".join(differences[:40])
