"""The retention rules as a pure function, the policy configuration, and how policy
changes are judged for the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncer.archive.store_retention import MessageFacts
from syncer.config.retention import RetentionPolicy, policies_snapshot
from syncer.config.schema import load_config, parse_config
from syncer.errors import ConfigError
from syncer.retention.policy import decide, policy_change_events

NOW = datetime(2030, 1, 1, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def facts(**ages: int) -> dict[int, MessageFacts]:
    """``m1=400`` -> message 1 is 400 days old."""
    return {
        int(key[1:]): MessageFacts(int(key[1:]), f"{key}sha", 100, NOW - timedelta(days=d), None)
        for key, d in ages.items()
    }


def p(name: str, **periods: int) -> RetentionPolicy:
    return RetentionPolicy.model_validate({"name": name, **periods})


def test_the_longest_delete_period_of_the_matching_policies_wins() -> None:
    policies = [p("short", delete_after_days=30), p("long", delete_after_days=365)]
    decided = decide(policies, {"short": {1, 2}, "long": {2}}, set(), facts(m1=100, m2=100), NOW)
    assert decided[1].delete_by == "short"
    assert 2 not in decided, "100 days old; 'long' keeps it for 365"


def test_a_floor_beats_a_delete_whichever_policy_sets_it() -> None:
    policies = [p("purge", delete_after_days=1), p("floor", keep_min_days=1000)]
    decided = decide(
        policies, {"purge": {1, 2}, "floor": {1, 2}}, set(), facts(m1=999, m2=1000), NOW
    )
    assert decided[1].floored and decided[1].delete_by is None
    assert decided[2].delete_by == "purge"


def test_a_hold_beats_deletes_and_server_expunges() -> None:
    policies = [p("all", delete_after_days=0, expunge_server_after_days=0)]
    decided = decide(policies, {"all": {1, 2}}, {2}, facts(m1=5, m2=5), NOW)
    assert (decided[1].delete_by, decided[1].expunge_by) == ("all", "all")
    assert decided[2].held and decided[2].delete_by is None and decided[2].expunge_by is None


def test_floors_do_not_keep_mail_on_the_server() -> None:
    policies = [p("free", expunge_server_after_days=10, keep_min_days=3650)]
    decided = decide(policies, {"free": {1}}, set(), facts(m1=11), NOW)
    assert decided[1].expunge_by == "free" and decided[1].delete_by is None


def test_a_policy_must_say_something_and_names_must_be_unique() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"retention": [{"name": "empty", "match": "is:gone"}]})
    (problem,) = info.value.problems
    assert problem.startswith("retention[0] (empty):") and "says nothing" in problem
    with pytest.raises(ConfigError) as info:
        parse_config(
            {"retention": [{"name": "a", "keep_min_days": 1}, {"name": "a", "keep_min_days": 2}]}
        )
    assert "'a' is used twice" in info.value.problems[0]


def test_a_bad_query_is_a_one_line_config_error_naming_the_policy() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"retention": [{"name": "mirror", "match": "is:", "delete_after_days": 3}]})
    (problem,) = info.value.problems
    assert "\n" not in problem
    assert problem.startswith("retention[0] (mirror).match:") and "column 4" in problem


def test_settings_validate_the_schedule_and_the_share() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"retention_settings": {"schedule": "daily", "max_delete_share": 2}})
    assert len(info.value.problems) == 2


@pytest.mark.parametrize(
    ("name", "policies"),
    [
        ("retention-keep-everything.toml", []),
        ("retention-mirror-server.toml", [("mirror", "is:gone", None, 30, None)]),
        ("retention-free-the-server.toml", [("free-server", "", 2555, None, 90)]),
    ],
)
def test_the_example_configs_load(name: str, policies: list[tuple[object, ...]]) -> None:
    config = load_config(REPO / "config" / name)
    assert [
        (r.name, r.match, r.keep_min_days, r.delete_after_days, r.expunge_server_after_days)
        for r in config.retention
    ] == policies


def _snap(*policies: RetentionPolicy) -> str:
    return policies_snapshot(list(policies))


def test_policy_changes_are_recorded_and_a_shorter_keep_is_called_out() -> None:
    first = _snap(p("keep", keep_min_days=3650), p("mirror", delete_after_days=30))
    assert [k for k, _ in policy_change_events(None, first)] == ["retention.policies_recorded"]
    longer = _snap(p("keep", keep_min_days=4000), p("mirror", delete_after_days=60))
    kinds = [k for k, _ in policy_change_events(first, longer)]
    assert kinds == ["retention.policies_changed"]
    shorter = _snap(p("keep", keep_min_days=365), p("mirror", delete_after_days=7))
    events = dict(policy_change_events(first, shorter))
    assert events["retention.keep_shortened"]["changes"] == [
        "policy 'keep': keep_min_days 3650 -> 365",
        "policy 'mirror': delete_after_days 30 -> 7",
    ]
    dropped = _snap(p("mirror", delete_after_days=30))
    changes = dict(policy_change_events(first, dropped))["retention.keep_shortened"]["changes"]
    assert changes == ["policy 'keep' removed with its floor keep_min_days = 3650"]
