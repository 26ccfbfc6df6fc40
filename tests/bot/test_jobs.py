"""bot.jobs: states, ids and the records' small helpers. Plain data, no database."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from bot.jobs import ACTIVE, NEEDS_NOTICE, TERMINAL, GuildSettings, Job, JobState, new_job_id


def test_job_ids_are_short_random_and_custom_id_safe() -> None:
    ids = {new_job_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{10}", job_id) for job_id in ids)


def test_states_are_strings() -> None:
    assert [state.value for state in JobState] == ["queued", "running", "done", "delivered", "failed", "cancelled"]
    assert JobState("done") is JobState.DONE
    assert f"{JobState.FAILED}" == "failed"


def test_state_sets() -> None:
    assert {JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED} == TERMINAL
    assert {JobState.QUEUED, JobState.RUNNING} == ACTIVE
    assert NEEDS_NOTICE <= TERMINAL
    assert JobState.DONE not in TERMINAL | ACTIVE


def test_a_new_job_is_queued_now_with_empty_history() -> None:
    job = Job(owner_id=1, channel_id=2, source_hash="0" * 64)
    assert (job.state, job.attempts, job.timings, job.warnings) == (JobState.QUEUED, 0, {}, [])
    assert not job.terminal
    assert Job(owner_id=1, channel_id=2, source_hash="0" * 64).id != job.id


def test_job_fields_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        Job("abc", JobState.QUEUED, 1)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("token", "expires_at", "now", "valid"),
    [("t", 100.0, 99.0, True), ("t", 100.0, 100.0, False), (None, 100.0, 0.0, False), ("t", None, 0.0, False)],
)
def test_token_valid(token: str | None, expires_at: float | None, now: float, valid: bool) -> None:
    job = Job(owner_id=1, channel_id=2, source_hash="0" * 64, interaction_token=token, token_expires_at=expires_at)
    assert job.token_valid(now) is valid


@pytest.mark.parametrize(("allowed", "channel", "expected"), [([], 5, True), ([5, 6], 6, True), ([5], 7, False)])
def test_guild_settings_allows(allowed: list[int], channel: int, expected: bool) -> None:
    assert GuildSettings(guild_id=1, allowed_channels=allowed).allows(channel) is expected


def test_jobs_module_needs_no_database() -> None:
    code = "import sys, bot.jobs; print(sorted(m for m in ('sqlite3', 'sqlite_utils') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
