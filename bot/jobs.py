"""The bot's records: a job's state, the job itself, and a guild's settings. Plain data, no I/O.

`bot.store` saves and loads these; cogs and the delivery code pass them around.

>>> from bot.jobs import Job, JobState
>>> job = Job(owner_id=42, channel_id=7, source_hash=digest, prompt="an ink drawing", strength=0.6)
>>> job.state, len(job.id)
(<JobState.QUEUED: 'queued'>, 10)
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "ACTIVE",
    "GUILD_MODES",
    "KINDS",
    "NEEDS_NOTICE",
    "TERMINAL",
    "GuildSettings",
    "Job",
    "JobState",
    "new_job_id",
]

#: how a job was made: a slash command, a context menu, or a button under an earlier result
KINDS: frozenset[str] = frozenset(
    {"restyle", "inpaint", "outpaint", "edit", "context", "variation", "reroll", "remix", "use_as_input"}
)

#: the modes a guild may pick as its default (fill needs a mask or padding, so it is never a default)
GUILD_MODES: tuple[str, ...] = ("redux", "canny", "depth", "kontext")

#: characters in a job id: 60 random bits, URL-safe and free of the ":" that separates custom_id parts
JOB_ID_LENGTH = 10


def new_job_id() -> str:
    """A fresh, short, random job id (10 URL-safe characters)."""
    return secrets.token_urlsafe(8)[:JOB_ID_LENGTH]


class JobState(StrEnum):
    """Where a job is in its life.

    QUEUED -> RUNNING -> DONE -> DELIVERED is the happy path. A job can be CANCELLED while queued
    or running, and FAILED at any point before it is delivered. A restart puts RUNNING jobs back
    to QUEUED. FAILED and CANCELLED jobs still owe the user a notice; `Job.notified_at` records
    that it was sent.
    """

    #: waiting for the GPU worker
    QUEUED = "queued"
    #: being rendered now
    RUNNING = "running"
    #: rendered and stored, not yet posted to Discord
    DONE = "done"
    #: the result message is posted (`result_message_id`); nothing left to do
    DELIVERED = "delivered"
    #: gave up with an `error`; the user is told once (`notified_at`)
    FAILED = "failed"
    #: stopped by its owner or a moderator; the user is told once (`notified_at`)
    CANCELLED = "cancelled"


#: states a job never leaves
TERMINAL: frozenset[JobState] = frozenset({JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED})

#: states that count against a user's limit and are resumed after a restart
ACTIVE: frozenset[JobState] = frozenset({JobState.QUEUED, JobState.RUNNING})

#: terminal states whose notice must still reach the user (tracked by `Job.notified_at`)
NEEDS_NOTICE: frozenset[JobState] = frozenset({JobState.FAILED, JobState.CANCELLED})


@dataclass(kw_only=True)
class Job:
    """One image request, from the command that made it to the message that shows its result.

    Keyword-only: only `owner_id`, `channel_id` and `source_hash` are required; a new job gets a
    fresh id, QUEUED, and `created_at` now. Images are referred to by the sha256 of their bytes
    (see `bot.store.put_image`). Times are epoch seconds.

    :param id: short unique id (`new_job_id`), used in custom_ids as `job:<id>:<action>`
    :param state: where the job is in its life
    :param owner_id: the Discord user who asked
    :param guild_id: the guild it was asked in; None in DMs
    :param channel_id: where the result is posted
    :param parent_id: the job whose result this one started from or varied (its lineage)
    :param kind: how it was made, one of `KINDS`
    :param mode: the engine mode ("redux", "canny", "depth", "fill", "kontext")
    :param prompt: the prompt, or the edit instruction for kontext
    :param strength: 0..1, how far the result may move from the source
    :param seed: the seed asked for; None for a random one
    :param fast: redux with FLUX.1-schnell
    :param outpaint: the padding for an outpaint, e.g. "right=50%"
    :param source_hash: the source image
    :param mask_hash: the inpainting mask, if any
    :param style_hash: the style image for canny/depth, if any
    :param result_hash: the rendered PNG, once DONE
    :param result_seed: the seed the render actually used
    :param steps: denoising steps actually run
    :param interaction_id: the interaction that made the job, if any
    :param interaction_token: its token, for followups while it lasts
    :param token_expires_at: when that token stops working (15 minutes after the interaction)
    :param ephemeral: whether replies are visible to the owner only
    :param upload_limit: bytes the interaction may upload (`Interaction.filesize_limit`); None: the default
    :param status_message_id: the "queued / rendering" message that is edited as the job moves
    :param result_message_id: the message that shows the result, once DELIVERED
    :param reply_to_message_id: the message the result replies to
    :param created_at: when the job was made
    :param started_at: when the last attempt started
    :param finished_at: when rendering ended (DONE, FAILED or CANCELLED)
    :param delivered_at: when the result was posted
    :param notified_at: when the FAILED/CANCELLED notice was posted
    :param attempts: how many times a render started
    :param error: why it failed, for the user
    :param timings: seconds per phase, as the engine reports them ("queued", "load", "total"...)
    :param warnings: notes for the user (resized source, truncated prompt...)
    """

    id: str = field(default_factory=new_job_id)
    state: JobState = JobState.QUEUED
    owner_id: int
    guild_id: int | None = None
    channel_id: int
    parent_id: str | None = None
    kind: str = "restyle"
    mode: str = "redux"
    prompt: str = ""
    strength: float = 0.5
    seed: int | None = None
    fast: bool = False
    outpaint: str | None = None
    source_hash: str
    mask_hash: str | None = None
    style_hash: str | None = None
    result_hash: str | None = None
    result_seed: int | None = None
    steps: int | None = None
    interaction_id: int | None = None
    interaction_token: str | None = None
    token_expires_at: float | None = None
    ephemeral: bool = False
    upload_limit: int | None = None
    status_message_id: int | None = None
    result_message_id: int | None = None
    reply_to_message_id: int | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    delivered_at: float | None = None
    notified_at: float | None = None
    attempts: int = 0
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        """Whether the job will never change state again."""
        return self.state in TERMINAL

    def token_valid(self, now: float | None = None) -> bool:
        """Whether the interaction token can still be used for followups.

        :param now: epoch seconds; the current time when None
        """
        if self.interaction_token is None or self.token_expires_at is None:
            return False
        return (time.time() if now is None else now) < self.token_expires_at


@dataclass
class GuildSettings:
    """What a guild's admins chose. A guild that never changed anything gets these defaults.

    :param guild_id: the guild
    :param default_mode: the mode used when a command names none, one of `GUILD_MODES`
    :param default_strength: the strength used when a command gives none, 0..1
    :param allowed_channels: channels the bot answers in; empty means every channel
    :param per_user_limit: jobs one user may have queued or running at once, at least 1
    :param public_results: whether results are posted for the channel rather than ephemerally
    """

    guild_id: int
    default_mode: str = "redux"
    default_strength: float = 0.5
    allowed_channels: list[int] = field(default_factory=list)
    per_user_limit: int = 3
    public_results: bool = True

    def allows(self, channel_id: int) -> bool:
        """Whether the bot answers in `channel_id`.

        :param channel_id: the channel a command came from
        """
        return not self.allowed_channels or channel_id in self.allowed_channels
