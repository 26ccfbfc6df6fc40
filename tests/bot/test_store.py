"""bot.store: jobs and settings in a real SQLite file, images on disk, migrations, threads."""

from __future__ import annotations

import ast
import hashlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from pathlib import Path

import pytest

from bot import store
from bot.jobs import GuildSettings, Job, JobState
from bot.store import Database, NotFoundError, StateError

ROOT = Path(__file__).resolve().parents[2]
SOURCE = hashlib.sha256(b"source").hexdigest()
RESULT = hashlib.sha256(b"result").hexdigest()
FIRST_MIGRATION = "0001_jobs_and_guild_settings"
SECOND_MIGRATION = "0002_jobs_reply_to_message_id"
THIRD_MIGRATION = "0003_jobs_upload_limit"
FOURTH_MIGRATION = "0004_jobs_result_message_index"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "restyle.db"


def raw_database(path: Path) -> Database:
    """A plain sqlite-utils Database on `path`, without open_db's setup or migrations."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return Database(sqlite3.connect(path))


@pytest.fixture
def db(db_path: Path) -> Iterator[Database]:
    database = store.open_db(db_path)
    yield database
    database.close()


@pytest.fixture
def images(tmp_path: Path) -> Path:
    return tmp_path / "images"


def new_job(**changes: object) -> Job:
    values: dict[str, object] = {"owner_id": 1, "channel_id": 10, "guild_id": 100, "source_hash": SOURCE}
    values.update(changes)
    return Job(**values)  # type: ignore[arg-type]


def job_in(db: Database, state: JobState, **changes: object) -> Job:
    """A stored job moved to `state` through the store's own verbs."""
    job = store.create_job(db, new_job(**changes))
    if state is JobState.QUEUED:
        return job
    if state is JobState.CANCELLED:
        cancelled = store.mark_cancelled(db, job.id)
        assert cancelled is not None
        return cancelled
    store.mark_running(db, job.id)
    if state is JobState.RUNNING:
        return store.get_job(db, job.id)
    if state is JobState.FAILED:
        return store.mark_failed(db, job.id, "out of memory")
    store.mark_done(db, job.id, result_hash=RESULT, result_seed=7, steps=14, timings={"total": 2.0})
    if state is JobState.DONE:
        return store.get_job(db, job.id)
    assert store.claim_delivery(db, job.id, 555)
    return store.get_job(db, job.id)


def every_field_set() -> Job:
    return Job(
        id="abcDEF_-09",
        state=JobState.DONE,
        owner_id=2**62 + 1,
        guild_id=1_234_567_890_123_456_789,
        channel_id=987_654_321_098_765_432,
        parent_id=None,
        kind="outpaint",
        mode="fill",
        prompt="a beach at dusk, 🌅 \"quoted\" and 'single'\nsecond line",
        strength=0.1 + 0.2,
        seed=2**63 - 1,
        fast=True,
        outpaint="right=50%",
        source_hash=SOURCE,
        mask_hash=hashlib.sha256(b"mask").hexdigest(),
        style_hash=hashlib.sha256(b"style").hexdigest(),
        result_hash=RESULT,
        result_seed=0,
        steps=14,
        interaction_id=1_111_111_111_111_111_111,
        interaction_token="aW50ZXJhY3Rpb246MTIzNDU2Nzg5OnRva2Vu",
        token_expires_at=1_700_000_900.123456,
        ephemeral=True,
        upload_limit=25 * 1024 * 1024,
        status_message_id=2_222_222_222_222_222_222,
        result_message_id=3_333_333_333_333_333_333,
        reply_to_message_id=4_444_444_444_444_444_444,
        created_at=1_700_000_000.000001,
        started_at=1_700_000_001.5,
        finished_at=1_700_000_004.25,
        delivered_at=1_700_000_005.0,
        notified_at=1_700_000_006.75,
        attempts=3,
        error="CUDA out of memory (tried to allocate 2.00 GiB)",
        timings={"queued": 0.1, "load": 1.0 / 3.0, "denoise": 2.718281828459045, "total": 3.141592653589793},
        warnings=["source resized to 1024x768", "prompt truncated"],
    )


def bare() -> Job:
    return Job(owner_id=5, channel_id=6, source_hash=SOURCE)


# -- round trips -----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [every_field_set, bare], ids=["every field set", "defaults and None"])
def test_create_and_get_round_trip_every_field(db: Database, db_path: Path, make) -> None:
    job = make()
    assert store.create_job(db, job) == job
    db.close()
    reopened = store.open_db(db_path)
    stored = store.get_job(reopened, job.id)
    reopened.close()
    for field in fields(Job):
        value, expected = getattr(stored, field.name), getattr(job, field.name)
        assert value == expected, field.name
        assert type(value) is type(expected), field.name


def test_new_job_gets_id_state_and_created_at(db: Database) -> None:
    job = store.create_job(db, new_job())
    assert re.fullmatch(r"[A-Za-z0-9_-]{10}", job.id)
    assert job.state is JobState.QUEUED
    assert job.attempts == 0
    assert job.created_at > 0


def test_get_job_unknown_raises_not_found_naming_the_id(db: Database) -> None:
    with pytest.raises(NotFoundError, match=re.escape("'no-such-job'")) as caught:
        store.get_job(db, "no-such-job")
    assert isinstance(caught.value, LookupError)


def test_find_job_unknown_returns_none(db: Database) -> None:
    assert store.find_job(db, "no-such-job") is None


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"id": "job:1:cancel"}, "job id"),
        ({"id": ""}, "job id"),
        ({"kind": "paint"}, "kind"),
        ({"strength": 1.5}, "strength"),
        ({"strength": -0.01}, "strength"),
        ({"source_hash": "not-a-digest"}, "digest"),
        ({"mask_hash": "A" * 64}, "digest"),
    ],
)
def test_create_job_checks_fields(db: Database, changes: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        store.create_job(db, new_job(**changes))
    assert store.recent_jobs(db) == []


def test_create_job_refuses_a_duplicate_id(db: Database) -> None:
    store.create_job(db, new_job(id="same"))
    with pytest.raises(ValueError, match="'same' already exists"):
        store.create_job(db, new_job(id="same", prompt="another"))
    assert store.get_job(db, "same").prompt == ""


def test_create_job_needs_an_existing_parent(db: Database) -> None:
    with pytest.raises(NotFoundError, match="'ghost'"):
        store.create_job(db, new_job(parent_id="ghost"))


# -- state changes ---------------------------------------------------------------------------------


def test_happy_path_queued_running_done_delivered(db: Database) -> None:
    job = store.create_job(db, new_job())
    running = store.mark_running(db, job.id)
    assert (running.state, running.attempts) == (JobState.RUNNING, 1)
    assert running.started_at is not None and running.started_at >= job.created_at

    done = store.mark_done(db, job.id, result_hash=RESULT, result_seed=42, steps=14, timings={"total": 3.5})
    assert done.state is JobState.DONE
    assert (done.result_hash, done.result_seed, done.steps, done.timings) == (RESULT, 42, 14, {"total": 3.5})
    assert done.finished_at is not None and done.finished_at >= running.started_at

    assert store.claim_delivery(db, job.id, 999)
    delivered = store.get_job(db, job.id)
    assert (delivered.state, delivered.result_message_id) == (JobState.DELIVERED, 999)
    assert delivered.delivered_at is not None and delivered.terminal


def test_attempts_count_every_start_across_requeues(db: Database) -> None:
    job = store.create_job(db, new_job())
    store.mark_running(db, job.id)
    requeued = store.requeue(db, job.id)
    assert (requeued.state, requeued.attempts, requeued.started_at) == (JobState.QUEUED, 1, None)
    assert store.mark_running(db, job.id).attempts == 2


def test_requeue_of_a_queued_job_changes_nothing(db: Database) -> None:
    job = store.create_job(db, new_job())
    assert store.requeue(db, job.id) == job


@pytest.mark.parametrize(
    ("state", "verb"),
    [
        (JobState.RUNNING, "start"),
        (JobState.DONE, "start"),
        (JobState.CANCELLED, "start"),
        (JobState.QUEUED, "finish"),
        (JobState.CANCELLED, "finish"),
        (JobState.DONE, "requeue"),
        (JobState.FAILED, "requeue"),
        (JobState.DELIVERED, "fail"),
        (JobState.CANCELLED, "fail"),
    ],
)
def test_refused_transition_raises_and_changes_nothing(db: Database, state: JobState, verb: str) -> None:
    job = job_in(db, state)
    calls = {
        "start": lambda: store.mark_running(db, job.id),
        "finish": lambda: store.mark_done(db, job.id, result_hash=RESULT, result_seed=1, steps=1, timings={}),
        "requeue": lambda: store.requeue(db, job.id),
        "fail": lambda: store.mark_failed(db, job.id, "late"),
    }
    with pytest.raises(StateError, match=f"cannot {verb} job {job.id!r}: it is {state.value!r}"):
        calls[verb]()
    assert store.get_job(db, job.id) == job


@pytest.mark.parametrize("state", [JobState.QUEUED, JobState.RUNNING, JobState.DONE])
def test_mark_failed_records_the_error(db: Database, state: JobState) -> None:
    job = job_in(db, state)
    failed = store.mark_failed(db, job.id, "the channel is gone")
    assert (failed.state, failed.error, failed.notified_at) == (JobState.FAILED, "the channel is gone", None)
    assert failed.finished_at is not None


@pytest.mark.parametrize("state", [JobState.QUEUED, JobState.RUNNING])
def test_mark_cancelled_stops_an_active_job(db: Database, state: JobState) -> None:
    job = job_in(db, state)
    cancelled = store.mark_cancelled(db, job.id)
    assert cancelled is not None
    assert cancelled.state is JobState.CANCELLED
    assert cancelled.finished_at is not None


@pytest.mark.parametrize("state", [JobState.DONE, JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED])
def test_mark_cancelled_returns_none_once_rendered_or_terminal(db: Database, state: JobState) -> None:
    job = job_in(db, state)
    assert store.mark_cancelled(db, job.id) is None
    assert store.get_job(db, job.id) == job


def test_a_render_that_finishes_after_cancel_is_refused(db: Database) -> None:
    job = job_in(db, JobState.RUNNING)
    store.mark_cancelled(db, job.id)
    with pytest.raises(StateError, match="'cancelled'"):
        store.mark_done(db, job.id, result_hash=RESULT, result_seed=1, steps=4, timings={})
    assert store.claim_delivery(db, job.id, 1) is False


def test_mark_done_checks_the_result_digest(db: Database) -> None:
    job = job_in(db, JobState.RUNNING)
    with pytest.raises(ValueError, match="digest"):
        store.mark_done(db, job.id, result_hash="../result.png", result_seed=1, steps=4, timings={})


# -- exactly once ----------------------------------------------------------------------------------


def test_claim_delivery_is_true_once_then_false(db: Database) -> None:
    job = job_in(db, JobState.DONE)
    assert store.claim_delivery(db, job.id, 111) is True
    assert store.claim_delivery(db, job.id, 222) is False
    assert store.get_job(db, job.id).result_message_id == 111


def test_claim_delivery_survives_a_restart(db: Database, db_path: Path) -> None:
    job = job_in(db, JobState.DONE)
    assert store.claim_delivery(db, job.id, 111)
    db.close()
    reopened = store.open_db(db_path)
    try:
        assert store.claim_delivery(reopened, job.id, 222) is False
        stored = store.get_job(reopened, job.id)
        assert (stored.state, stored.result_message_id) == (JobState.DELIVERED, 111)
        assert store.undelivered(reopened) == []
    finally:
        reopened.close()


@pytest.mark.parametrize("state", [JobState.QUEUED, JobState.RUNNING, JobState.FAILED, JobState.CANCELLED])
def test_claim_delivery_is_false_unless_done(db: Database, state: JobState) -> None:
    job = job_in(db, state)
    assert store.claim_delivery(db, job.id, 1) is False
    assert store.get_job(db, job.id) == job


@pytest.mark.parametrize("connections", ["one shared connection", "one connection per thread"])
def test_concurrent_claim_delivery_has_exactly_one_winner(db: Database, db_path: Path, connections: str) -> None:
    threads = 4
    shared = connections == "one shared connection"
    handles = [db] * threads if shared else [store.open_db(db_path) for _ in range(threads)]
    try:
        for _ in range(10):
            job = job_in(db, JobState.DONE)
            barrier = threading.Barrier(threads)

            def claim(index: int, job_id: str = job.id, barrier: threading.Barrier = barrier) -> bool:
                barrier.wait()
                return store.claim_delivery(handles[index], job_id, 1000 + index)

            with ThreadPoolExecutor(threads) as pool:
                won = list(pool.map(claim, range(threads)))
            assert won.count(True) == 1
            winner = won.index(True)
            assert store.get_job(db, job.id).result_message_id == 1000 + winner
    finally:
        if not shared:
            for handle in handles:
                handle.close()


@pytest.mark.parametrize("state", [JobState.FAILED, JobState.CANCELLED])
def test_mark_notified_is_true_once(db: Database, state: JobState) -> None:
    job = job_in(db, state)
    assert store.mark_notified(db, job.id) is True
    notified_at = store.get_job(db, job.id).notified_at
    assert notified_at is not None
    assert store.mark_notified(db, job.id) is False
    assert store.get_job(db, job.id).notified_at == notified_at


@pytest.mark.parametrize("state", [JobState.QUEUED, JobState.RUNNING, JobState.DONE, JobState.DELIVERED])
def test_mark_notified_is_false_without_a_notice_to_give(db: Database, state: JobState) -> None:
    job = job_in(db, state)
    assert store.mark_notified(db, job.id) is False
    assert store.get_job(db, job.id).notified_at is None


def test_one_connection_shared_by_many_threads(db: Database) -> None:
    def lifecycle(index: int) -> JobState:
        job = store.create_job(db, new_job(owner_id=index))
        store.mark_running(db, job.id)
        store.mark_done(db, job.id, result_hash=RESULT, result_seed=index, steps=1, timings={"total": 1.0})
        assert store.claim_delivery(db, job.id, index)
        store.update_settings(db, 100, per_user_limit=1 + index % 5)
        return store.get_job(db, job.id).state

    with ThreadPoolExecutor(8) as pool:
        states = list(pool.map(lifecycle, range(64)))
    assert states == [JobState.DELIVERED] * 64
    assert len(store.recent_jobs(db, limit=100)) == 64


@pytest.mark.parametrize(
    "call",
    [
        lambda db: store.mark_running(db, "ghost"),
        lambda db: store.mark_done(db, "ghost", result_hash=RESULT, result_seed=1, steps=1, timings={}),
        lambda db: store.mark_failed(db, "ghost", "x"),
        lambda db: store.mark_cancelled(db, "ghost"),
        lambda db: store.requeue(db, "ghost"),
        lambda db: store.claim_delivery(db, "ghost", 1),
        lambda db: store.mark_notified(db, "ghost"),
        lambda db: store.set_status_message(db, "ghost", 1),
        lambda db: store.set_reply_to(db, "ghost", 1),
        lambda db: store.lineage(db, "ghost"),
    ],
    ids=[
        "mark_running",
        "mark_done",
        "mark_failed",
        "mark_cancelled",
        "requeue",
        "claim_delivery",
        "mark_notified",
        "set_status_message",
        "set_reply_to",
        "lineage",
    ],
)
def test_unknown_job_raises_not_found(db: Database, call) -> None:
    with pytest.raises(NotFoundError, match="'ghost'"):
        call(db)


def test_set_status_message_and_reply_to(db: Database) -> None:
    job = store.create_job(db, new_job())
    store.set_status_message(db, job.id, 123)
    store.set_reply_to(db, job.id, 456)
    stored = store.get_job(db, job.id)
    assert (stored.status_message_id, stored.reply_to_message_id) == (123, 456)
    store.set_status_message(db, job.id, None)
    assert store.get_job(db, job.id).status_message_id is None


# -- queries ---------------------------------------------------------------------------------------


@pytest.fixture
def one_of_each(db: Database) -> dict[JobState, Job]:
    """A job in every state, created in the order of JobState, one second apart."""
    return {state: job_in(db, state, created_at=1000.0 + index) for index, state in enumerate(JobState)}


def test_jobs_to_resume_are_queued_and_running_oldest_first(db: Database, one_of_each: dict[JobState, Job]) -> None:
    late = job_in(db, JobState.QUEUED, created_at=2000.0)
    early = job_in(db, JobState.RUNNING, created_at=500.0)
    resumed = [job.id for job in store.jobs_to_resume(db)]
    assert resumed == [early.id, one_of_each[JobState.QUEUED].id, one_of_each[JobState.RUNNING].id, late.id]


def test_undelivered_is_done_and_unnotified_failures(db: Database, one_of_each: dict[JobState, Job]) -> None:
    expected = [one_of_each[state].id for state in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)]
    assert [job.id for job in store.undelivered(db)] == expected
    store.mark_notified(db, one_of_each[JobState.FAILED].id)
    assert [job.id for job in store.undelivered(db)] == [expected[0], expected[2]]


def test_active_count_is_queued_plus_running_per_owner(db: Database, one_of_each: dict[JobState, Job]) -> None:
    job_in(db, JobState.QUEUED, owner_id=2)
    assert store.active_count(db, 1) == 2
    assert store.active_count(db, 2) == 1
    assert store.active_count(db, 3) == 0


@pytest.mark.parametrize(("guild_id", "expected"), [(None, ["a", "b", "c", "d"]), (100, ["a", "d"]), (200, ["b"])])
def test_queued_jobs_oldest_first_per_guild(db: Database, guild_id: int | None, expected: list[str]) -> None:
    job_in(db, JobState.QUEUED, id="a", created_at=1.0)
    job_in(db, JobState.RUNNING, id="b", guild_id=200, created_at=2.0)
    job_in(db, JobState.QUEUED, id="c", guild_id=None, created_at=3.0)
    job_in(db, JobState.RUNNING, id="d", created_at=4.0)
    job_in(db, JobState.DONE, id="e", created_at=0.5)
    assert [job.id for job in store.queued_jobs(db, guild_id)] == expected


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["e", "d", "c"]),
        ({"limit": 10}, ["e", "d", "c", "b", "a"]),
        ({"owner_id": 2, "limit": 10}, ["d", "b"]),
        ({"guild_id": 200, "limit": 10}, ["e", "b"]),
        ({"owner_id": 2, "guild_id": 200, "limit": 1}, ["b"]),
    ],
)
def test_recent_jobs_newest_first(db: Database, filters: dict[str, int], expected: list[str]) -> None:
    made = [("a", 1, 100), ("b", 2, 200), ("c", 1, 100), ("d", 2, 100), ("e", 3, 200)]
    for index, (job_id, owner, guild) in enumerate(made):
        job_in(db, list(JobState)[index], id=job_id, owner_id=owner, guild_id=guild, created_at=float(index))
    if "limit" not in filters:
        filters = {**filters, "limit": 3}
    assert [job.id for job in store.recent_jobs(db, **filters)] == expected


@pytest.mark.parametrize("limit", [0, -1, True])
def test_recent_jobs_refuses_a_bad_limit(db: Database, limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        store.recent_jobs(db, limit=limit)


def test_lineage_of_a_four_deep_chain_is_root_first(db: Database) -> None:
    root = store.create_job(db, new_job(id="root"))
    chain = [root]
    for name, kind in [("variation", "variation"), ("reroll", "reroll"), ("remix", "remix")]:
        chain.append(store.create_job(db, new_job(id=name, parent_id=chain[-1].id, kind=kind)))
    assert store.lineage(db, "remix") == chain
    assert store.lineage(db, "reroll") == chain[:3]
    assert store.lineage(db, "root") == [root]


def test_lineage_stops_at_a_cycle(db: Database) -> None:
    store.create_job(db, new_job(id="a"))
    store.create_job(db, new_job(id="b", parent_id="a"))
    store.create_job(db, new_job(id="c", parent_id="b"))
    db.execute("UPDATE jobs SET parent_id = 'c' WHERE id = 'a'")
    assert [job.id for job in store.lineage(db, "c")] == ["a", "b", "c"]
    assert [job.id for job in store.lineage(db, "a")] == ["b", "c", "a"]


def test_lineage_stops_at_a_self_parent(db: Database) -> None:
    store.create_job(db, new_job(id="a"))
    db.execute("UPDATE jobs SET parent_id = 'a' WHERE id = 'a'")
    assert [job.id for job in store.lineage(db, "a")] == ["a"]


def test_children_oldest_first(db: Database) -> None:
    store.create_job(db, new_job(id="parent"))
    store.create_job(db, new_job(id="second", parent_id="parent", kind="reroll", created_at=2.0))
    store.create_job(db, new_job(id="first", parent_id="parent", kind="variation", created_at=1.0))
    store.create_job(db, new_job(id="grandchild", parent_id="first", kind="remix"))
    assert [job.id for job in store.children(db, "parent")] == ["first", "second"]
    assert store.children(db, "grandchild") == []
    assert store.children(db, "ghost") == []


def finished(db: Database, total: float, *, mode: str = "redux", fast: bool = False, steps: int = 14) -> Job:
    job = store.create_job(db, new_job(mode=mode, fast=fast))
    store.mark_running(db, job.id)
    timings = {"queued": 9.0, "total": total}
    return store.mark_done(db, job.id, result_hash=RESULT, result_seed=1, steps=steps, timings=timings)


def test_mean_render_seconds_is_none_without_history(db: Database) -> None:
    job_in(db, JobState.QUEUED)
    assert store.mean_render_seconds(db, "redux") is None


def test_mean_render_seconds_averages_finished_jobs_of_the_mode(db: Database) -> None:
    finished(db, 2.0)
    delivered = finished(db, 4.0)
    store.claim_delivery(db, delivered.id, 1)
    finished(db, 100.0, mode="canny")
    finished(db, 0.01, steps=0)
    failed = job_in(db, JobState.RUNNING)
    store.mark_failed(db, failed.id, "boom")
    assert store.mean_render_seconds(db, "redux") == pytest.approx(3.0)
    assert store.mean_render_seconds(db, "canny") == pytest.approx(100.0)
    assert store.mean_render_seconds(db, "kontext") is None


def test_mean_render_seconds_uses_the_latest_jobs_and_fast_filter(db: Database) -> None:
    for total in (50.0, 10.0, 20.0):
        finished(db, total)
    finished(db, 1.0, fast=True)
    assert store.mean_render_seconds(db, "redux", limit=2, fast=False) == pytest.approx(15.0)
    assert store.mean_render_seconds(db, "redux", fast=True) == pytest.approx(1.0)
    assert store.mean_render_seconds(db, "redux") == pytest.approx(81.0 / 4)


# -- opening and migrations ------------------------------------------------------------------------


def test_open_db_uses_wal_foreign_keys_and_a_busy_timeout(db: Database) -> None:
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000


def test_open_db_creates_parent_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "restyle.db"
    store.open_db(path).close()
    assert path.is_file()


def test_open_db_connection_works_from_other_threads(db: Database) -> None:
    job = store.create_job(db, new_job())
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(store.get_job, db, job.id).result() == job


def test_schema_has_the_tables_and_indexes(db: Database) -> None:
    assert {"jobs", "guild_settings", "_migrations"} <= set(db.table_names())
    indexed = {tuple(index.columns) for index in db.table("jobs").indexes}
    assert {("state",), ("owner_id",), ("channel_id",), ("parent_id",)} <= indexed
    assert set(db.table("jobs").columns_dict) == {field.name for field in fields(Job)}


def test_migrate_applies_everything_once(db_path: Path) -> None:
    db = raw_database(db_path)
    try:
        everything = [FIRST_MIGRATION, SECOND_MIGRATION, THIRD_MIGRATION, FOURTH_MIGRATION]
        assert store.migrate(db) == everything
        assert store.migrate(db) == []
        recorded = [row["name"] for row in db.query("SELECT name FROM _migrations ORDER BY id")]
        assert recorded == everything
        assert any(index.columns == ["result_message_id"] for index in db.table("jobs").indexes)
    finally:
        db.close()


def test_open_db_twice_migrates_nothing_more(db: Database, db_path: Path) -> None:
    again = store.open_db(db_path)
    try:
        assert store.migrate(again) == []
    finally:
        again.close()


def test_a_database_at_migration_1_is_upgraded(db_path: Path) -> None:
    old = raw_database(db_path)
    assert store.migrate(old, stop_before=SECOND_MIGRATION) == [FIRST_MIGRATION]
    assert "reply_to_message_id" not in old.table("jobs").columns_dict
    old.execute(
        "INSERT INTO jobs (id, state, owner_id, channel_id, kind, mode, prompt, strength, fast, source_hash,"
        " ephemeral, created_at, attempts, timings, warnings)"
        " VALUES ('old', 'done', 1, 2, 'restyle', 'redux', 'ink', 0.5, 0, ?, 0, 1.0, 1, '{}', '[]')",
        [SOURCE],
    )
    old.close()

    db = store.open_db(db_path)
    try:
        assert store.migrate(db) == []
        job = store.get_job(db, "old")
        assert (job.prompt, job.reply_to_message_id, job.upload_limit) == ("ink", None, None)
        store.set_reply_to(db, "old", 42)
        assert store.get_job(db, "old").reply_to_message_id == 42
    finally:
        db.close()


def test_a_failing_migration_is_rolled_back_and_stays_pending(db_path: Path) -> None:
    registry = store.MigrationRegistry("throwaway")
    fail = True

    @registry(name="0001_notes")
    def _notes(db: Database) -> None:
        db.table("notes").create({"id": int, "text": str}, pk="id")

    @registry(name="0002_tags")
    def _tags(db: Database) -> None:
        db.table("tags").create({"id": int}, pk="id")
        if fail:
            raise RuntimeError("half way")

    db = raw_database(db_path)
    try:
        with pytest.raises(RuntimeError, match="half way"):
            store.migrate(db, migrations=registry)
        assert "notes" in db.table_names()
        assert "tags" not in db.table_names()
        fail = False
        assert store.migrate(db, migrations=registry) == ["0002_tags"]
        assert store.migrate(db, migrations=registry) == []
    finally:
        db.close()


# -- images ----------------------------------------------------------------------------------------


def test_same_bytes_give_the_same_hash_and_one_file(images: Path) -> None:
    data = b"\x89PNG\r\n\x1a\n not really a png"
    first = store.put_image(images, data)
    assert store.put_image(images, data) == first
    assert store.put_image(images, data, suffix=".webp") == first
    assert first == hashlib.sha256(data).hexdigest()
    files = [path for path in images.rglob("*") if path.is_file()]
    assert files == [images / first[:2] / f"{first}.png"]
    assert store.read_image(images, first) == data


@pytest.mark.parametrize("suffix", [".jpg", ".webp", ""])
def test_image_path_finds_any_suffix(images: Path, suffix: str) -> None:
    digest = store.put_image(images, b"jpeg bytes", suffix=suffix)
    assert store.image_path(images, digest) == images / digest[:2] / f"{digest}{suffix}"


def test_put_image_leaves_no_temporary_files(images: Path) -> None:
    for index in range(20):
        store.put_image(images, f"image {index}".encode())
    leftovers = [path for path in images.rglob("*") if path.is_file() and not re.fullmatch(r"[0-9a-f]{64}\.png", path.name)]
    assert leftovers == []


def test_a_failed_write_leaves_nothing_behind(images: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_replace(source: str, target: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.put_image(images, b"data")
    assert [path for path in images.rglob("*") if path.is_file()] == []
    with pytest.raises(NotFoundError):
        store.image_path(images, hashlib.sha256(b"data").hexdigest())


@pytest.mark.parametrize(
    "digest",
    ["../../etc/passwd", "abc", "A" * 64, "g" * 64, "a" * 63 + "/", "a" * 65, "../" + "a" * 61, ""],
)
@pytest.mark.parametrize("reader", [store.image_path, store.read_image])
def test_a_bad_digest_is_rejected(images: Path, reader, digest: str) -> None:
    with pytest.raises(ValueError, match="digest"):
        reader(images, digest)


def test_a_missing_image_raises_not_found(images: Path) -> None:
    digest = hashlib.sha256(b"never stored").hexdigest()
    with pytest.raises(NotFoundError, match=digest):
        store.read_image(images, digest)


@pytest.mark.parametrize("suffix", ["png", "/x.png", ".png/../x", ". png", ".verylongsuffix"])
def test_put_image_rejects_a_bad_suffix(images: Path, suffix: str) -> None:
    with pytest.raises(ValueError, match="suffix"):
        store.put_image(images, b"data", suffix=suffix)
    assert not images.exists()


def test_put_image_rejects_empty_data(images: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        store.put_image(images, b"")


# -- guild settings --------------------------------------------------------------------------------


def test_settings_default_when_never_changed(db: Database) -> None:
    assert store.get_settings(db, 100) == GuildSettings(guild_id=100)


def test_update_settings_persists_and_keeps_the_rest(db: Database, db_path: Path) -> None:
    updated = store.update_settings(db, 100, default_strength=0.65, allowed_channels=[3, 1, 3])
    assert updated == GuildSettings(guild_id=100, default_strength=0.65, allowed_channels=[3, 1])
    updated = store.update_settings(db, 100, default_mode="kontext", per_user_limit=1, public_results=False)
    db.close()
    reopened = store.open_db(db_path)
    try:
        stored = store.get_settings(reopened, 100)
        assert stored == updated
        assert stored == GuildSettings(100, "kontext", 0.65, [3, 1], 1, False)
        assert store.get_settings(reopened, 200) == GuildSettings(guild_id=200)
    finally:
        reopened.close()


def test_update_settings_with_no_changes_stores_the_defaults(db: Database) -> None:
    assert store.update_settings(db, 100) == GuildSettings(guild_id=100)
    assert db.table("guild_settings").count == 1


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"colour": "red"}, ValueError, "'colour'"),
        ({"guild_ids": [1]}, ValueError, "'guild_ids'"),
        ({"default_strength": 1.5}, ValueError, "default_strength.*1.5"),
        ({"default_strength": -0.1}, ValueError, "default_strength"),
        ({"default_strength": float("nan")}, ValueError, "default_strength"),
        ({"default_strength": "0.5"}, TypeError, "default_strength"),
        ({"per_user_limit": 0}, ValueError, "per_user_limit.*0"),
        ({"per_user_limit": 2.5}, TypeError, "per_user_limit"),
        ({"default_mode": "fill"}, ValueError, "default_mode.*'fill'"),
        ({"default_mode": "watercolour"}, ValueError, "default_mode"),
        ({"allowed_channels": "123"}, TypeError, "allowed_channels"),
        ({"allowed_channels": [1, "2"]}, TypeError, "allowed_channels"),
        ({"public_results": 1}, TypeError, "public_results"),
        ({"default_strength": 0.7, "per_user_limit": 0}, ValueError, "per_user_limit"),
    ],
)
def test_update_settings_checks_names_and_values(
    db: Database, changes: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        store.update_settings(db, 100, **changes)
    assert store.get_settings(db, 100) == GuildSettings(guild_id=100)
    assert db.table("guild_settings").count == 0


# -- the boundary ----------------------------------------------------------------------------------


def _runtime_imports(tree: ast.Module) -> Iterator[str]:
    """Modules imported outside `if TYPE_CHECKING:` blocks (those cost nothing at run time)."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
        pending.extend(ast.iter_child_nodes(node))


def test_only_the_store_imports_sqlite_utils() -> None:
    importers = []
    for folder in ("bot", "cogs", "engine"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            if any(name.split(".")[0] == "sqlite_utils" for name in _runtime_imports(tree)):
                importers.append(path.relative_to(ROOT).as_posix())
    assert importers == ["bot/store.py"]


def test_find_job_by_result_message(db: Database) -> None:
    shown = job_in(db, JobState.DELIVERED)  # claim_delivery gave it message 555
    job_in(db, JobState.DONE)  # rendered, not posted: no message yet
    assert store.find_job_by_result_message(db, 555) == shown
    assert store.find_job_by_result_message(db, 556) is None


def test_sweep_removes_old_unreferenced_images_and_crash_leftovers_only(db: Database, images: Path) -> None:
    used = store.put_image(images, b"a source a job uses")
    store.create_job(db, Job(owner_id=1, channel_id=2, source_hash=used, prompt="ink"))
    orphan = store.put_image(images, b"a result whose job was cancelled as it finished")
    fresh = store.put_image(images, b"an attachment stored a moment before its job")
    leftover = store.image_path(images, orphan).parent / f".{orphan}.abc.tmp"
    leftover.write_bytes(b"half")
    hours_ago = time.time() - 2 * 3600
    for path in (store.image_path(images, used), store.image_path(images, orphan), leftover):
        os.utime(path, (hours_ago, hours_ago))

    assert store.sweep_images(db, images) == 2
    assert store.read_image(images, used) and store.read_image(images, fresh)
    with pytest.raises(NotFoundError):
        store.image_path(images, orphan)
    assert not leftover.exists()
    assert store.sweep_images(db, images) == 0
