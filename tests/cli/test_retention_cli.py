"""`syncer retention`, `syncer hold` and `syncer audit` from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import update

from syncer.archive.models import audit_events
from syncer.archive.store import ArchiveStore
from syncer.model import RemoteMessage
from tests.cli.conftest import Syncer

BASE = '[archive]\nurl = "sqlite:///archive.db"\n'
MIRROR = BASE + (
    '[[retention]]\nname = "old"\nmatch = "folder:Old"\ndelete_after_days = {days}\n'
    "[retention_settings]\nmax_delete_share = 0.3\n"
)


def seeded(cli: Syncer, text: str) -> ArchiveStore:
    """The archive of ``cli`` with messages 1-3 in INBOX and 4-5 in Old, all from 2001."""
    cli.write_config(text)
    assert cli("init").exit_code == 0
    store = ArchiveStore.open(f"sqlite:///{cli.tmp_path / 'archive.db'}")
    store.ensure_account("work", "imap")
    when = datetime(2001, 1, 1, tzinfo=UTC)
    for folder, numbers in (("INBOX", (1, 2, 3)), ("Old", (4, 5))):
        raws = [f"Subject: m{n}\r\nMessage-ID: <{n}@x>\r\n\r\nbody\r\n".encode() for n in numbers]
        batch = [
            RemoteMessage(folder=folder, uid=n, raw=raw, internaldate=when)
            for n, raw in zip(numbers, raws, strict=True)
        ]
        store.archive_batch("work", folder, 1, batch, None)
    return store


def test_plan_then_apply_asks_for_force_above_the_share(syncer_cli: Syncer) -> None:
    store = seeded(syncer_cli, MIRROR.format(days=30))
    try:
        plan = syncer_cli.json("retention", "plan")
        assert plan["delete"]["messages"] == 2 and plan["archive_messages"] == 5
        assert [s["subject"] for s in plan["policies"][0]["sample"]] == [None, None]

        refused = syncer_cli("retention", "apply")
        assert refused.exit_code == 2
        assert refused.stderr.startswith(
            "Error: This retention run would delete 2 of 5 messages (40.0%), more than "
            "[retention_settings] max_delete_share (30.0%); nothing was deleted."
        )
        assert "syncer retention apply --force" in refused.stderr
        assert store.message_count() == 5

        done = syncer_cli("retention", "apply", "--force")
        assert done.exit_code == 0, done.output
        assert "Deleted 2 messages" in done.stdout
        assert store.message_count() == 3
        assert syncer_cli("audit", "verify").exit_code == 0
    finally:
        store.close()


def test_a_shortened_keep_period_is_audited_at_the_next_command(syncer_cli: Syncer) -> None:
    store = seeded(syncer_cli, MIRROR.format(days=90))
    try:
        assert syncer_cli("retention", "plan").exit_code == 0
        syncer_cli.write_config(MIRROR.format(days=30))
        assert syncer_cli("retention", "plan").exit_code == 0
        assert syncer_cli("retention", "plan").exit_code == 0  # unchanged: nothing new
        events = json.loads(syncer_cli("audit", "export", "--json").stdout)
        assert [e["kind"] for e in events] == [
            "retention.policies_recorded",
            "retention.policies_changed",
            "retention.keep_shortened",
        ]
        assert events[2]["details"]["changes"] == ["policy 'old': delete_after_days 90 -> 30"]
        assert all(e["actor"] and e["hash"] for e in events)
    finally:
        store.close()


def test_holds_are_added_listed_released_and_never_deleted(syncer_cli: Syncer) -> None:
    store = seeded(syncer_cli, MIRROR.format(days=30))
    try:
        added = syncer_cli("hold", "add", "case", "folder:Old", "--reason", "subpoena 17")
        assert added.exit_code == 0, added.output
        assert "2 messages match" in added.stdout
        assert syncer_cli("hold", "add", "case", "folder:INBOX").exit_code == 2
        (listed,) = syncer_cli.json("hold", "list")
        assert (listed["name"], listed["messages"], listed["reason"]) == ("case", 2, "subpoena 17")

        assert syncer_cli("retention", "apply", "--force").exit_code == 0
        assert store.message_count() == 5, "held"

        assert syncer_cli("hold", "release", "case").exit_code == 0
        missing = syncer_cli("hold", "release", "case")
        assert missing.exit_code == 2
        assert "No active legal hold named 'case'. Active holds: none." in missing.stderr
        assert syncer_cli.json("hold", "list") == []
        assert len(syncer_cli.json("hold", "list", "--all")) == 1
        assert syncer_cli("retention", "apply", "--force").exit_code == 0
        assert store.message_count() == 3
    finally:
        store.close()


def test_a_hold_with_a_malformed_query_is_refused(syncer_cli: Syncer) -> None:
    syncer_cli("init")
    result = syncer_cli("hold", "add", "x", "folder:")
    assert result.exit_code == 2
    assert "column" in result.stderr


def test_audit_verify_names_the_edited_event(syncer_cli: Syncer) -> None:
    store = seeded(syncer_cli, MIRROR.format(days=30))
    try:
        syncer_cli("hold", "add", "a", "folder:Old")
        syncer_cli("hold", "release", "a")
        with store.engine.begin() as conn:
            conn.execute(update(audit_events).where(audit_events.c.id == 1).values(actor="eve"))
        result = syncer_cli("audit", "verify")
        assert result.exit_code == 1
        assert result.stdout.startswith("Audit trail broken: event 1 (hold.added) was altered")
        as_json = syncer_cli("audit", "verify", "--json")
        assert as_json.exit_code == 1 and json.loads(as_json.stdout)["broken_at"] == 1
    finally:
        store.close()


def test_syncer_run_records_the_policies_and_applies_them_on_schedule(
    syncer_cli: Syncer,
) -> None:
    config = MIRROR.format(days=30).replace(
        "max_delete_share = 0.3\n",
        'max_delete_share = 0.5\nschedule = "0 3 * * *"\nbatch_size = 1\n',
    )
    store = seeded(syncer_cli, config)
    try:
        result = syncer_cli("run", "--once")
        assert result.exit_code == 0, result.output
        assert store.message_count() == 3
        kinds = [e.kind for e in store.audit_events()]
        assert kinds == [
            "retention.policies_recorded",  # at start-up
            "retention.deleted",  # one event per batch of one
            "retention.deleted",
            "retention.run",
        ]
        jobs = {job["job"]: job for job in syncer_cli.json("status")["jobs"]}
        assert jobs["retention"]["schedule"] == "cron 0 3 * * *"
    finally:
        store.close()


def test_audit_anchor_is_written_private_and_verify_checks_against_it(
    syncer_cli: Syncer,
) -> None:
    from sqlalchemy import delete

    from syncer.archive.models import job_state

    store = seeded(syncer_cli, MIRROR.format(days=30))
    try:
        syncer_cli("hold", "add", "a", "folder:Old")
        syncer_cli("hold", "release", "a")
        anchor = syncer_cli.tmp_path / "anchor.json"
        written = syncer_cli("audit", "anchor", str(anchor))
        assert written.exit_code == 0, written.output
        assert (anchor.stat().st_mode & 0o777) == 0o600
        verified = syncer_cli("audit", "verify", "--anchor", str(anchor))
        assert verified.exit_code == 0
        assert "chain intact and matches the anchor" in verified.stdout
        head = json.loads(syncer_cli("audit", "verify", "--json").stdout)
        assert head["events"] == 2 and len(head["head_hash"]) == 64
        assert f"hash {head['head_hash']}" in verified.stdout

        with store.engine.begin() as conn:  # cut everything, head included
            conn.execute(delete(audit_events))
            conn.execute(delete(job_state).where(job_state.c.kind == "audit"))
        assert syncer_cli("audit", "verify").exit_code == 0, "the database alone cannot tell"
        cut = syncer_cli("audit", "verify", "--anchor", str(anchor))
        assert cut.exit_code == 1 and "anchored head" in cut.stdout

        anchor.write_text("{}")
        bad = syncer_cli("audit", "verify", "--anchor", str(anchor))
        assert bad.exit_code == 2 and "is not an audit anchor" in bad.output
    finally:
        store.close()
