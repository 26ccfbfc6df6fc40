"""The bot's storage: jobs and guild settings in SQLite, images as content-addressed files.

SQLite is the source of truth for jobs. This is the only module that imports `sqlite_utils`; the
rest of the bot calls these plain verbs, each taking the `Database` that `open_db` returned::

    from bot import store
    from bot.jobs import Job

    db = store.open_db("data/restyle.db")              # creates folders, WAL, runs migrations
    digest = store.put_image(Path("data/images"), png_bytes)
    job = store.create_job(db, Job(owner_id=42, channel_id=7, source_hash=digest, prompt="ink"))
    store.mark_running(db, job.id)
    store.mark_done(db, job.id, result_hash=out, result_seed=1234, steps=14, timings={"total": 3.2})
    if store.claim_delivery(db, job.id, message.id):   # True exactly once
        ...
    else:
        ...                                            # cancelled or already delivered: delete the message

The functions are synchronous; the bot runs them with `asyncio.to_thread`. The connection is
opened with `check_same_thread=False` and every public function holds a per-database lock, so
one `Database` may be shared by worker threads: calls run one at a time. Steps that must happen
exactly once (`claim_delivery`, `mark_notified`, every state change) are single conditional
UPDATEs, so they stay exactly-once even across connections or processes.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import re
import sqlite3
import statistics
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlite_utils import Database, Migrations
from sqlite_utils.db import ForeignKey, Table

from bot.jobs import ACTIVE, GUILD_MODES, KINDS, NEEDS_NOTICE, GuildSettings, Job, JobState

__all__ = [
    "MIGRATIONS",
    "Database",
    "MigrationRegistry",
    "NotFoundError",
    "StateError",
    "StoreError",
    "active_count",
    "children",
    "claim_delivery",
    "create_job",
    "find_job",
    "find_job_by_result_message",
    "get_job",
    "get_settings",
    "image_path",
    "jobs_to_resume",
    "lineage",
    "mark_cancelled",
    "mark_done",
    "mark_failed",
    "mark_notified",
    "mark_running",
    "mean_render_seconds",
    "migrate",
    "open_db",
    "put_image",
    "queued_jobs",
    "read_image",
    "recent_jobs",
    "requeue",
    "set_reply_to",
    "set_status_message",
    "undelivered",
    "update_settings",
]

#: how long a write waits for another connection's lock before giving up
BUSY_TIMEOUT_S = 10.0

_JOB_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Job))
_JOB_SELECT = ", ".join(_JOB_COLUMNS)
_JSON_JOB_FIELDS = ("timings", "warnings")
_BOOL_JOB_FIELDS = ("fast", "ephemeral")
_ORDER_OLDEST = "created_at, rowid"
_ORDER_NEWEST = "created_at DESC, rowid DESC"

_SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in fields(GuildSettings) if f.name != "guild_id")

_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_SUFFIX = re.compile(r"(\.[A-Za-z0-9]{1,10})?")
#: the job columns that hold image digests
_IMAGE_COLUMNS = ("source_hash", "mask_hash", "style_hash", "result_hash")


class StoreError(Exception):
    """Base class for the store's errors."""


class NotFoundError(StoreError, LookupError):
    """No job, or no image, with that id."""


class StateError(StoreError):
    """A job is not in a state that allows the change asked for."""


# -- one caller at a time per database -------------------------------------------------------------

_P = ParamSpec("_P")
_R = TypeVar("_R")

_locks: weakref.WeakKeyDictionary[Database, threading.RLock] = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def _lock_for(db: Database) -> threading.RLock:
    with _locks_guard:
        lock = _locks.get(db)
        if lock is None:
            lock = _locks[db] = threading.RLock()
        return lock


def _serialized(fn: Callable[Concatenate[Database, _P], _R]) -> Callable[Concatenate[Database, _P], _R]:
    """Run `fn` holding `db`'s lock, so threads sharing one connection take turns."""

    @functools.wraps(fn)
    def wrapper(db: Database, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with _lock_for(db):
            return fn(db, *args, **kwargs)

    return wrapper


@contextlib.contextmanager
def _write_transaction(db: Database) -> Iterator[None]:
    """A transaction that takes the write lock up front, for read-then-write steps."""
    if db.conn.in_transaction:
        with db.atomic():
            yield
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.commit()
    except BaseException:
        db.rollback()
        raise


# -- opening and migrating -------------------------------------------------------------------------


class MigrationRegistry(Migrations):
    """sqlite-utils' migration set, recorded in the `_migrations` table.

    Each migration is a decorated function, applied once, inside a transaction together with the
    row that records it. Names start with a number so their order is plain to see.
    """

    migrations_table = "_migrations"


#: the bot's schema, oldest migration first
MIGRATIONS = MigrationRegistry("restyle")


@MIGRATIONS(name="0001_jobs_and_guild_settings")
def _create_jobs_and_guild_settings(db: Database) -> None:
    jobs = db.table("jobs")
    jobs.create(
        {
            "id": str,
            "state": str,
            "owner_id": int,
            "guild_id": int,
            "channel_id": int,
            "parent_id": str,
            "kind": str,
            "mode": str,
            "prompt": str,
            "strength": float,
            "seed": int,
            "fast": bool,
            "outpaint": str,
            "source_hash": str,
            "mask_hash": str,
            "style_hash": str,
            "result_hash": str,
            "result_seed": int,
            "steps": int,
            "interaction_id": int,
            "interaction_token": str,
            "token_expires_at": float,
            "ephemeral": bool,
            "status_message_id": int,
            "result_message_id": int,
            "created_at": float,
            "started_at": float,
            "finished_at": float,
            "delivered_at": float,
            "notified_at": float,
            "attempts": int,
            "error": str,
            "timings": str,
            "warnings": str,
        },
        pk="id",
        foreign_keys=[ForeignKey("jobs", "parent_id", "jobs", "id", on_delete="SET NULL")],
        not_null=[
            "state",
            "owner_id",
            "channel_id",
            "kind",
            "mode",
            "prompt",
            "strength",
            "fast",
            "source_hash",
            "ephemeral",
            "created_at",
            "attempts",
            "timings",
            "warnings",
        ],
    )
    for column in ("state", "owner_id", "channel_id", "parent_id"):
        jobs.create_index([column])
    db.table("guild_settings").create(
        {
            "guild_id": int,
            "default_mode": str,
            "default_strength": float,
            "allowed_channels": str,
            "per_user_limit": int,
            "public_results": bool,
        },
        pk="guild_id",
        not_null=["default_mode", "default_strength", "allowed_channels", "per_user_limit", "public_results"],
    )


@MIGRATIONS(name="0002_jobs_reply_to_message_id")
def _add_reply_to_message_id(db: Database) -> None:
    # Results reply to the message they came from (a context menu's target, or an earlier result).
    db.table("jobs").add_column("reply_to_message_id", int)


@MIGRATIONS(name="0003_jobs_upload_limit")
def _add_upload_limit(db: Database) -> None:
    # Results are shrunk to fit what the interaction may upload (a boosted guild allows more).
    db.table("jobs").add_column("upload_limit", int)


@MIGRATIONS(name="0004_jobs_result_message_index")
def _index_result_message(db: Database) -> None:
    # The context menu finds the job behind a result message it was used on.
    db.table("jobs").create_index(["result_message_id"], if_not_exists=True)


def open_db(path: str | Path) -> Database:
    """Open (or create) the bot's database file and bring its schema up to date.

    Creates the parent folders, opens the connection for use from worker threads
    (`check_same_thread=False`, see the module docstring), turns on WAL journaling, foreign keys
    and a busy timeout, then runs `migrate`.

    :param path: the SQLite file, e.g. "data/restyle.db"
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    try:
        db = Database(conn)
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        db.execute("PRAGMA foreign_keys = ON")
        db.enable_wal()
        migrate(db)
    except BaseException:
        conn.close()
        raise
    return db


@_serialized
def migrate(db: Database, *, migrations: MigrationRegistry = MIGRATIONS, stop_before: str | None = None) -> list[str]:
    """Apply the migrations this database has not had yet, in order, and name them.

    Each migration runs in its own transaction with the row recording it, so a failing one leaves
    nothing behind and stays pending. Running it again applies nothing and returns [].

    :param migrations: the registry to apply; the bot's own by default
    :param stop_before: leave this migration and every later one pending (for tests of upgrades)
    """
    already = {applied.name for applied in migrations.applied(db)}
    migrations.apply(db, stop_before=stop_before)
    return [applied.name for applied in migrations.applied(db) if applied.name not in already]


# -- rows <-> jobs ---------------------------------------------------------------------------------


def _job_row(job: Job) -> dict[str, Any]:
    row = {name: getattr(job, name) for name in _JOB_COLUMNS}
    row["state"] = JobState(job.state).value
    for name in _JSON_JOB_FIELDS:
        row[name] = json.dumps(row[name])
    for name in _BOOL_JOB_FIELDS:
        row[name] = bool(row[name])
    return row


def _job_from_row(row: dict[str, Any]) -> Job:
    values = {name: row[name] for name in _JOB_COLUMNS}
    values["state"] = JobState(values["state"])
    for name in _JSON_JOB_FIELDS:
        values[name] = json.loads(values[name])
    for name in _BOOL_JOB_FIELDS:
        values[name] = bool(values[name])
    return Job(**values)


def _jobs(db: Database) -> Table:
    return db.table("jobs")


def _select(
    db: Database, where: str | None = None, params: Sequence[Any] = (), *, order_by: str, limit: int | None = None
) -> list[Job]:
    rows = _jobs(db).rows_where(where, params, select=_JOB_SELECT, order_by=order_by, limit=limit)
    return [_job_from_row(row) for row in rows]


def _states(states: Iterable[JobState]) -> tuple[str, list[str]]:
    """SQL placeholders and parameters for `state IN (...)`, in a stable order."""
    values = sorted(JobState(state).value for state in states)
    return ", ".join("?" * len(values)), values


def _find(db: Database, job_id: str) -> Job | None:
    found = _select(db, "id = ?", [job_id], order_by="id")
    return found[0] if found else None


def _get(db: Database, job_id: str) -> Job:
    job = _find(db, job_id)
    if job is None:
        raise NotFoundError(f"no job with id {job_id!r}")
    return job


def _transition(
    db: Database, job_id: str, allowed: Collection[JobState], assignments: str, params: Sequence[Any]
) -> Job | None:
    """Apply `assignments` if the job is in one of the `allowed` states, atomically; the new job or None."""
    placeholders, states = _states(allowed)
    sql = f"UPDATE jobs SET {assignments} WHERE id = ? AND state IN ({placeholders}) RETURNING {_JOB_SELECT}"
    rows = list(db.query(sql, [*params, job_id, *states]))
    return _job_from_row(rows[0]) if rows else None


def _refused(db: Database, job_id: str, action: str, allowed: Collection[JobState]) -> StateError:
    """The error for a transition that did not apply (raises NotFoundError if there is no such job)."""
    job = _get(db, job_id)
    expected = " or ".join(sorted(JobState(state).value for state in allowed))
    return StateError(f"cannot {action} job {job_id!r}: it is {job.state.value!r}, not {expected}")


def _check_job(job: Job) -> None:
    if not isinstance(job.id, str) or not _JOB_ID.fullmatch(job.id):
        raise ValueError(f"job id must be 1 to 32 letters, digits, '-' or '_', got {job.id!r}")
    if job.kind not in KINDS:
        raise ValueError(f"job kind must be one of {sorted(KINDS)}, got {job.kind!r}")
    if not 0.0 <= job.strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, got {job.strength!r}")
    for name in _IMAGE_COLUMNS:
        value = getattr(job, name)
        if value is not None:
            _check_digest(value)


# -- jobs: create and read -------------------------------------------------------------------------


@_serialized
def create_job(db: Database, job: Job) -> Job:
    """Save a new job and return it as stored.

    The job's fields are checked first: a well-formed id, a known `kind`, strength within 0..1 and
    sha256 hex digests for the images. Its parent, if any, must already exist.

    :param job: the job to save, usually fresh (`Job(owner_id=..., channel_id=..., source_hash=...)`)
    :raises ValueError: for a bad field, or an id already in use
    :raises NotFoundError: if `job.parent_id` names no job
    """
    _check_job(job)
    if _find(db, job.id) is not None:
        raise ValueError(f"a job with id {job.id!r} already exists")
    if job.parent_id is not None and _find(db, job.parent_id) is None:
        raise NotFoundError(f"no job with id {job.parent_id!r} (the parent of {job.id!r})")
    _jobs(db).insert(_job_row(job))
    return _get(db, job.id)


@_serialized
def get_job(db: Database, job_id: str) -> Job:
    """The job with this id.

    :param job_id: the job's id
    :raises NotFoundError: if there is none
    """
    return _get(db, job_id)


@_serialized
def find_job(db: Database, job_id: str) -> Job | None:
    """The job with this id, or None if there is none (for ids from users or custom_ids).

    :param job_id: the job's id
    """
    return _find(db, job_id)


@_serialized
def find_job_by_result_message(db: Database, message_id: int) -> Job | None:
    """The job whose result this Discord message shows, or None (for a context menu on any message).

    :param message_id: a message id, e.g. the target of "Restyle image"
    """
    found = _select(db, "result_message_id = ?", [message_id], order_by=_ORDER_NEWEST, limit=1)
    return found[0] if found else None


# -- jobs: state changes ---------------------------------------------------------------------------


@_serialized
def mark_running(db: Database, job_id: str) -> Job:
    """Start an attempt: QUEUED -> RUNNING, counting it in `attempts` and setting `started_at`.

    :param job_id: the job's id
    :raises StateError: if the job is not QUEUED (e.g. cancelled while it waited)
    :raises NotFoundError: if there is no such job
    """
    allowed = {JobState.QUEUED}
    job = _transition(
        db, job_id, allowed, "state = ?, attempts = attempts + 1, started_at = ?", [JobState.RUNNING.value, time.time()]
    )
    if job is None:
        raise _refused(db, job_id, "start", allowed)
    return job


@_serialized
def mark_done(
    db: Database, job_id: str, *, result_hash: str, result_seed: int, steps: int, timings: dict[str, float]
) -> Job:
    """Record a finished render: RUNNING -> DONE, ready to be delivered.

    :param job_id: the job's id
    :param result_hash: the result PNG's digest, from `put_image`
    :param result_seed: the seed the render used
    :param steps: denoising steps run
    :param timings: seconds per phase, as the engine reports them
    :raises StateError: if the job is not RUNNING (e.g. cancelled mid-render: drop the result)
    :raises NotFoundError: if there is no such job
    """
    _check_digest(result_hash)
    allowed = {JobState.RUNNING}
    job = _transition(
        db,
        job_id,
        allowed,
        "state = ?, result_hash = ?, result_seed = ?, steps = ?, timings = ?, finished_at = ?",
        [JobState.DONE.value, result_hash, result_seed, steps, json.dumps(dict(timings)), time.time()],
    )
    if job is None:
        raise _refused(db, job_id, "finish", allowed)
    return job


@_serialized
def mark_failed(db: Database, job_id: str, error: str) -> Job:
    """Give up on a job: QUEUED, RUNNING or DONE -> FAILED, with a reason for the user.

    DONE is allowed so that a result that can never be posted (the channel is gone) stops being
    retried. The user is still owed a notice: see `undelivered` and `mark_notified`.

    :param job_id: the job's id
    :param error: what went wrong, in words for the user
    :raises StateError: if the job is already delivered, failed or cancelled
    :raises NotFoundError: if there is no such job
    """
    allowed = {JobState.QUEUED, JobState.RUNNING, JobState.DONE}
    job = _transition(
        db, job_id, allowed, "state = ?, error = ?, finished_at = ?", [JobState.FAILED.value, error, time.time()]
    )
    if job is None:
        raise _refused(db, job_id, "fail", allowed)
    return job


@_serialized
def mark_cancelled(db: Database, job_id: str) -> Job | None:
    """Cancel a job that has not finished rendering: QUEUED or RUNNING -> CANCELLED.

    A running render must also be told to stop (the engine's handle); if it finishes anyway,
    `mark_done` refuses it.

    :param job_id: the job's id
    :returns: the cancelled job, or None if it was already done, delivered, failed or cancelled
    :raises NotFoundError: if there is no such job
    """
    job = _transition(db, job_id, ACTIVE, "state = ?, finished_at = ?", [JobState.CANCELLED.value, time.time()])
    if job is None:
        _get(db, job_id)
    return job


@_serialized
def requeue(db: Database, job_id: str) -> Job:
    """Put an interrupted job back in line: RUNNING -> QUEUED (after a restart).

    `attempts` keeps counting; `started_at` is cleared until the next attempt. A job that is
    already QUEUED is returned unchanged.

    :param job_id: the job's id
    :raises StateError: if the job is done, delivered, failed or cancelled
    :raises NotFoundError: if there is no such job
    """
    job = _transition(db, job_id, ACTIVE, "state = ?, started_at = NULL", [JobState.QUEUED.value])
    if job is None:
        raise _refused(db, job_id, "requeue", ACTIVE)
    return job


@_serialized
def claim_delivery(db: Database, job_id: str, message_id: int) -> bool:
    """Mark a result as posted, exactly once: DONE -> DELIVERED with `result_message_id`.

    One conditional UPDATE, so of any number of callers (threads, connections, a restarted bot
    re-running its backlog) exactly one gets True. False means the job was not DONE: already
    delivered, or cancelled or failed meanwhile; the caller should delete the message it posted.

    :param job_id: the job's id
    :param message_id: the Discord message that shows the result
    :raises NotFoundError: if there is no such job
    """
    cursor = db.execute(
        "UPDATE jobs SET state = ?, result_message_id = ?, delivered_at = ? WHERE id = ? AND state = ?",
        [JobState.DELIVERED.value, message_id, time.time(), job_id, JobState.DONE.value],
    )
    if cursor.rowcount == 1:
        return True
    _get(db, job_id)
    return False


@_serialized
def mark_notified(db: Database, job_id: str) -> bool:
    """Record, exactly once, that a FAILED or CANCELLED job's notice reached its owner.

    One conditional UPDATE that sets `notified_at` only if it is still empty: True for the one
    caller that set it, False if it was set before or the job is not FAILED or CANCELLED.

    :param job_id: the job's id
    :raises NotFoundError: if there is no such job
    """
    placeholders, states = _states(NEEDS_NOTICE)
    cursor = db.execute(
        f"UPDATE jobs SET notified_at = ? WHERE id = ? AND state IN ({placeholders}) AND notified_at IS NULL",
        [time.time(), job_id, *states],
    )
    if cursor.rowcount == 1:
        return True
    _get(db, job_id)
    return False


def _set_column(db: Database, job_id: str, column: str, value: Any) -> None:
    cursor = db.execute(f"UPDATE jobs SET {column} = ? WHERE id = ?", [value, job_id])
    if cursor.rowcount != 1:
        raise NotFoundError(f"no job with id {job_id!r}")


@_serialized
def set_status_message(db: Database, job_id: str, message_id: int | None) -> None:
    """Remember the message that shows the job's progress, to edit it later.

    :param job_id: the job's id
    :param message_id: the status message, or None once it is gone
    :raises NotFoundError: if there is no such job
    """
    _set_column(db, job_id, "status_message_id", message_id)


@_serialized
def set_reply_to(db: Database, job_id: str, message_id: int | None) -> None:
    """Remember the message the result should reply to.

    :param job_id: the job's id
    :param message_id: the message to reply to, or None to post without a reply
    :raises NotFoundError: if there is no such job
    """
    _set_column(db, job_id, "reply_to_message_id", message_id)


# -- jobs: queries ---------------------------------------------------------------------------------


@_serialized
def jobs_to_resume(db: Database) -> list[Job]:
    """Jobs a restart must pick up again: QUEUED and RUNNING, oldest first."""
    placeholders, states = _states(ACTIVE)
    return _select(db, f"state IN ({placeholders})", states, order_by=_ORDER_OLDEST)


@_serialized
def undelivered(db: Database) -> list[Job]:
    """Jobs whose outcome has not reached the user yet, oldest first.

    DONE jobs (the result is rendered but not posted), and FAILED or CANCELLED jobs whose notice
    has not been sent (`notified_at` is empty).
    """
    placeholders, states = _states(NEEDS_NOTICE)
    where = f"state = ? OR (state IN ({placeholders}) AND notified_at IS NULL)"
    return _select(db, where, [JobState.DONE.value, *states], order_by=_ORDER_OLDEST)


@_serialized
def active_count(db: Database, owner_id: int) -> int:
    """How many jobs a user has queued or running (for `GuildSettings.per_user_limit`).

    :param owner_id: the Discord user
    """
    placeholders, states = _states(ACTIVE)
    return _jobs(db).count_where(f"owner_id = ? AND state IN ({placeholders})", [owner_id, *states])


@_serialized
def queued_jobs(db: Database, guild_id: int | None = None) -> list[Job]:
    """Jobs waiting or rendering, oldest first: the queue as users see it.

    :param guild_id: only this guild's jobs; every job (DMs included) when None
    """
    placeholders, states = _states(ACTIVE)
    where, params = f"state IN ({placeholders})", list(states)
    if guild_id is not None:
        where, params = f"{where} AND guild_id = ?", [*params, guild_id]
    return _select(db, where, params, order_by=_ORDER_OLDEST)


@_serialized
def recent_jobs(db: Database, *, owner_id: int | None = None, guild_id: int | None = None, limit: int = 10) -> list[Job]:
    """The latest jobs in any state, newest first.

    :param owner_id: only this user's jobs, when given
    :param guild_id: only this guild's jobs, when given
    :param limit: at most this many, at least 1
    """
    _check_limit(limit)
    clauses: list[str] = []
    params: list[Any] = []
    if owner_id is not None:
        clauses.append("owner_id = ?")
        params.append(owner_id)
    if guild_id is not None:
        clauses.append("guild_id = ?")
        params.append(guild_id)
    return _select(db, " AND ".join(clauses) or None, params, order_by=_ORDER_NEWEST, limit=limit)


@_serialized
def lineage(db: Database, job_id: str) -> list[Job]:
    """The chain of jobs that led to this one, root first, ending with the job itself.

    Follows `parent_id` until a job without a parent, a parent that no longer exists, or a job
    already in the chain (so a cycle cannot loop forever).

    :param job_id: the job's id
    :raises NotFoundError: if there is no such job
    """
    chain = [_get(db, job_id)]
    seen = {job_id}
    parent_id = chain[0].parent_id
    while parent_id is not None and parent_id not in seen:
        parent = _find(db, parent_id)
        if parent is None:
            break
        chain.append(parent)
        seen.add(parent_id)
        parent_id = parent.parent_id
    chain.reverse()
    return chain


@_serialized
def children(db: Database, job_id: str) -> list[Job]:
    """Jobs made from this one's result (variations, re-rolls, remixes...), oldest first.

    :param job_id: the parent job's id; an unknown id has no children
    """
    return _select(db, "parent_id = ?", [job_id], order_by=_ORDER_OLDEST)


@_serialized
def mean_render_seconds(db: Database, mode: str, limit: int = 50, *, fast: bool | None = None) -> float | None:
    """The mean render time of recent finished jobs of a mode, for ETAs; None with no history.

    Reads `timings["total"]` of the latest `limit` DONE or DELIVERED jobs of the mode that ran at
    least one step (strength 0 returns the source without rendering, and would skew the mean).

    :param mode: the engine mode, e.g. "redux"
    :param limit: how many recent jobs to average, at least 1
    :param fast: only fast (True) or only full (False) jobs; both when None
    """
    _check_limit(limit)
    placeholders, states = _states({JobState.DONE, JobState.DELIVERED})
    where = f"mode = ? AND state IN ({placeholders}) AND steps > 0"
    params: list[Any] = [mode, *states]
    if fast is not None:
        where, params = f"{where} AND fast = ?", [*params, fast]
    rows = _jobs(db).rows_where(where, params, select="timings", order_by="finished_at DESC, rowid DESC", limit=limit)
    totals = []
    for row in rows:
        total = json.loads(row["timings"]).get("total")
        if isinstance(total, int | float) and not isinstance(total, bool) and math.isfinite(total) and total >= 0:
            totals.append(float(total))
    return statistics.fmean(totals) if totals else None


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a whole number of at least 1, got {limit!r}")


# -- images ----------------------------------------------------------------------------------------


def _check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise ValueError(f"an image digest is 64 lowercase hex characters (sha256), got {digest!r}")
    return digest


def _image_folder(images_dir: str | Path, digest: str) -> Path:
    return Path(images_dir) / digest[:2]


def _stored_image(images_dir: str | Path, digest: str) -> Path | None:
    folder = _image_folder(images_dir, digest)
    if not folder.is_dir():
        return None
    for path in sorted(folder.iterdir()):
        if path.name == digest or path.name.startswith(f"{digest}."):
            return path
    return None


def put_image(images_dir: str | Path, data: bytes, suffix: str = ".png") -> str:
    """Store image bytes under their sha256 and return the digest (hex).

    The file is `images_dir/<first two hex chars>/<digest><suffix>`, written to a temporary file
    in the same folder and moved into place with `os.replace`, so a crash never leaves half an
    image under a real name. Bytes already stored (under any suffix) are not written again.

    :param images_dir: the root of the image store, e.g. data/images
    :param data: the encoded image (PNG, JPEG, WebP...)
    :param suffix: the file's extension, e.g. ".png" or ".jpg"; "" for none
    :raises ValueError: for empty data or a suffix that is not a dot and 1 to 10 letters or digits
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    if not data:
        raise ValueError("cannot store an empty image")
    if not isinstance(suffix, str) or not _SUFFIX.fullmatch(suffix):
        raise ValueError(f"suffix must be '' or a dot and 1 to 10 letters or digits, got {suffix!r}")
    digest = hashlib.sha256(data).hexdigest()
    if _stored_image(images_dir, digest) is not None:
        return digest
    folder = _image_folder(images_dir, digest)
    folder.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{digest}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, folder / f"{digest}{suffix}")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return digest


def image_path(images_dir: str | Path, digest: str) -> Path:
    """The file holding the image with this digest, whatever its suffix.

    :param images_dir: the root of the image store
    :param digest: the sha256 hex digest `put_image` returned
    :raises ValueError: if `digest` is not 64 lowercase hex characters
    :raises NotFoundError: if no such image is stored
    """
    _check_digest(digest)
    path = _stored_image(images_dir, digest)
    if path is None:
        raise NotFoundError(f"no image with digest {digest!r} in {str(images_dir)!r}")
    return path


@_serialized
def sweep_images(db: Database, images_dir: str | Path, *, older_than: float = 3600.0) -> int:
    """Delete stored images that no job refers to, and temporary files left by a crash; return how
    many files went. Only files untouched for ``older_than`` seconds go: an attachment is stored a
    moment before its job row, and a sweep must never take it from under that job.

    >>> sweep_images(db, "data/images")  # at start-up: a result whose job was cancelled as it finished
    1

    :param images_dir: the root of the image store
    :param older_than: seconds since a file was last written
    """
    referenced: set[str] = set()
    for row in db.execute(f"SELECT {', '.join(_IMAGE_COLUMNS)} FROM jobs").fetchall():
        referenced.update(digest for digest in row if digest)
    cutoff = time.time() - older_than
    removed = 0
    for path in Path(images_dir).glob("*/*"):
        digest = path.name.lstrip(".").split(".")[0]
        unused = path.name.startswith(".") or digest not in referenced  # ".<digest>.*.tmp": a crashed write
        if unused and path.is_file() and path.stat().st_mtime < cutoff:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    return removed


def read_image(images_dir: str | Path, digest: str) -> bytes:
    """The bytes of the image with this digest.

    :param images_dir: the root of the image store
    :param digest: the sha256 hex digest `put_image` returned
    :raises ValueError: if `digest` is not 64 lowercase hex characters
    :raises NotFoundError: if no such image is stored
    """
    return image_path(images_dir, digest).read_bytes()


# -- guild settings --------------------------------------------------------------------------------


def _settings_from_row(row: dict[str, Any]) -> GuildSettings:
    return GuildSettings(
        guild_id=row["guild_id"],
        default_mode=row["default_mode"],
        default_strength=row["default_strength"],
        allowed_channels=json.loads(row["allowed_channels"]),
        per_user_limit=row["per_user_limit"],
        public_results=bool(row["public_results"]),
    )


def _find_settings(db: Database, guild_id: int) -> GuildSettings:
    rows = list(db.table("guild_settings").rows_where("guild_id = ?", [guild_id]))
    return _settings_from_row(rows[0]) if rows else GuildSettings(guild_id=guild_id)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_setting(name: str, value: Any) -> Any:
    """The value to store for setting `name`, or ValueError/TypeError naming what is wrong."""
    if name == "default_mode":
        if not isinstance(value, str) or value not in GUILD_MODES:
            raise ValueError(f"default_mode must be one of {', '.join(GUILD_MODES)}, got {value!r}")
        return str(value)
    if name == "default_strength":
        if not (_is_int(value) or isinstance(value, float)):
            raise TypeError(f"default_strength must be a number, got {value!r}")
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"default_strength must be between 0 and 1, got {value!r}")
        return float(value)
    if name == "per_user_limit":
        if not _is_int(value):
            raise TypeError(f"per_user_limit must be a whole number, got {value!r}")
        if value < 1:
            raise ValueError(f"per_user_limit must be at least 1, got {value!r}")
        return value
    if name == "allowed_channels":
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise TypeError(f"allowed_channels must be a list of channel ids, got {value!r}")
        channels = list(value)
        bad = [channel for channel in channels if not _is_int(channel)]
        if bad:
            raise TypeError(f"allowed_channels must hold channel ids (int), got {bad[0]!r}")
        return list(dict.fromkeys(channels))
    if name == "public_results":
        if not isinstance(value, bool):
            raise TypeError(f"public_results must be True or False, got {value!r}")
        return value
    raise ValueError(f"unknown guild setting {name!r}; the settings are {', '.join(_SETTING_NAMES)}")


@_serialized
def get_settings(db: Database, guild_id: int) -> GuildSettings:
    """A guild's settings, or the defaults if it never changed any.

    :param guild_id: the guild
    """
    return _find_settings(db, guild_id)


@_serialized
def update_settings(db: Database, guild_id: int, *, add_channels: Iterable[int] = (), **changes: Any) -> GuildSettings:
    """Change some of a guild's settings and return all of them.

    Every change is checked before anything is written: names must be `GuildSettings` fields
    (other than `guild_id`), `default_mode` one of redux/canny/depth/kontext, `default_strength`
    within 0..1, `per_user_limit` at least 1, `allowed_channels` a list of ids (duplicates are
    dropped), `public_results` a bool.

    >>> update_settings(db, guild_id, add_channels=[123])  # keeps the channels already allowed

    :param guild_id: the guild
    :param add_channels: channel ids appended to the allowed list (after `allowed_channels`, if
        given) in the same transaction, so two admins adding channels at once both keep theirs
    :param changes: the settings to change, e.g. `default_strength=0.6, allowed_channels=[123]`
    :raises ValueError: for an unknown setting or a value out of range
    :raises TypeError: for a value of the wrong type
    """
    checked = {name: _check_setting(name, value) for name, value in changes.items()}
    added = _check_setting("allowed_channels", add_channels)
    with _write_transaction(db):
        settings = replace(_find_settings(db, guild_id), **checked)
        if added:
            settings = replace(
                settings, allowed_channels=_check_setting("allowed_channels", [*settings.allowed_channels, *added])
            )
        row = {
            "guild_id": settings.guild_id,
            "default_mode": settings.default_mode,
            "default_strength": settings.default_strength,
            "allowed_channels": json.dumps(settings.allowed_channels),
            "per_user_limit": settings.per_user_limit,
            "public_results": settings.public_results,
        }
        db.table("guild_settings").upsert(row, pk="guild_id")
    return settings
