"""Delivery: status edits and results, exactly once, through the interaction or the channel.

A slash command's status message is its deferred response, edited through the interaction
webhook while the token lives (15 minutes). After that, and for jobs started by buttons, the bot
uses channel messages, which no token limits. Results are delivered by editing the status message
(an edit repeated after a crash changes nothing) or, once the token has died, by a channel message
whose nonce is the job id, which Discord deduplicates; `store.claim_delivery` then moves the job
to DELIVERED once, so a restart never delivers twice.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import discord
from PIL import Image

from bot import store
from bot.jobs import Job, JobState

if TYPE_CHECKING:
    from bot.store import Database

__all__ = ["Delivery", "fit_upload", "progress_bar"]

log = logging.getLogger(__name__)

#: Interaction tokens live 15 minutes; keep a margin for the request in flight.
TOKEN_MARGIN = 30.0
#: Discord's smallest upload limit, used when nothing better is known.
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
#: Discord's error code for a dead interaction token.
INVALID_WEBHOOK_TOKEN = 50027


@dataclass(frozen=True)
class Upload:
    """The file to attach and a note when it had to be re-encoded or shrunk."""

    filename: str
    data: bytes
    note: str | None = None


def fit_upload(png: bytes, limit: int, stem: str) -> Upload:
    """The PNG if it fits `limit`, else high-quality WebP, then JPEG, then downscaled JPEGs."""
    if len(png) <= limit:
        return Upload(f"{stem}.png", png)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    for fmt, suffix, options in (("WEBP", "webp", {"quality": 95, "method": 4}), ("JPEG", "jpg", {"quality": 92})):
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **options)
        if buffer.tell() <= limit:
            return Upload(f"{stem}.{suffix}", buffer.getvalue(), f"sent as {fmt} (the PNG is over the upload limit)")
    scale = 0.85
    while scale > 0.05:
        smaller = image.resize(
            (max(1, int(image.width * scale)), max(1, int(image.height * scale))), Image.Resampling.LANCZOS
        )
        buffer = io.BytesIO()
        smaller.save(buffer, format="JPEG", quality=90)
        if buffer.tell() <= limit:
            note = f"downscaled to {smaller.width}x{smaller.height} JPEG to fit the upload limit"
            return Upload(f"{stem}.jpg", buffer.getvalue(), note)
        scale *= 0.85
    raise ValueError(f"cannot fit an image under {limit} bytes")


def progress_bar(step: int, total: int, width: int = 16) -> str:
    filled = round(width * step / max(total, 1))
    return "█" * filled + "░" * (width - filled) + f" {step}/{total}"


def _reply(job: Job, message_id: int | None) -> discord.MessageReference | None:
    """A reply to `message_id` in the job's channel; a deleted target is no reason to fail."""
    if not message_id:
        return None
    return discord.MessageReference(message_id=message_id, channel_id=job.channel_id, fail_if_not_exists=False)


class Delivery:
    """Edits status messages and delivers results for the job runner."""

    def __init__(self, client: discord.Client, db: Database, images_dir: Path, *, clock: Callable[[], float] = time.time):
        self.client = client
        self.db = db
        self.images_dir = images_dir
        self.clock = clock
        #: Set by the buttons cog: the result's buttons, and the Cancel button while a job runs.
        self.result_view: Callable[[Job], discord.ui.View] | None = None
        self.running_view: Callable[[Job], discord.ui.View] | None = None
        self.render_embed: Callable[[Job, str | None, Job | None], discord.Embed] | None = None

    # --- where to send ---------------------------------------------------------------------------

    def token_alive(self, job: Job) -> bool:
        return bool(job.interaction_token) and (job.token_expires_at or 0) - TOKEN_MARGIN > self.clock()

    @staticmethod
    def _token_died(job: Job, exc: discord.HTTPException) -> bool:
        """True for Discord's "Invalid Webhook Token": the token died earlier than our clock said."""
        if exc.status == 401 or exc.code == INVALID_WEBHOOK_TOKEN:
            log.info("job %s: the interaction token is dead; using the channel from now on", job.id)
            job.interaction_token = None
            return True
        return False

    def _webhook(self, job: Job) -> discord.Webhook:
        assert job.interaction_token is not None and self.client.application_id is not None
        return discord.Webhook.partial(self.client.application_id, job.interaction_token, client=self.client)

    def _channel_message(self, job: Job, message_id: int) -> discord.PartialMessage:
        return self.client.get_partial_messageable(job.channel_id).get_partial_message(message_id)

    # --- status ------------------------------------------------------------------------------------

    async def status(self, job: Job, text: str, *, running: bool = True) -> None:
        """Show `text` in the job's status message (creating one in the channel if it has none)."""
        view = self.running_view(job) if running and self.running_view else None
        try:
            if job.status_message_id is None:
                message = await self._send_status(job, text, view)
                await asyncio.to_thread(store.set_status_message, self.db, job.id, message.id)
                job.status_message_id = message.id
            elif self.token_alive(job):
                try:
                    await self._webhook(job).edit_message(job.status_message_id, content=text, view=view)
                except discord.HTTPException as exc:
                    if not self._token_died(job, exc) or job.ephemeral:
                        raise
                    await self._channel_message(job, job.status_message_id).edit(content=text, view=view)
            elif not job.ephemeral:
                await self._channel_message(job, job.status_message_id).edit(content=text, view=view)
        except discord.HTTPException as exc:
            # A status edit is best effort: the result still comes.
            log.warning("status edit failed for job %s: %s %s", job.id, exc.status, exc.text)

    async def _send_status(self, job: Job, text: str, view: discord.ui.View | None) -> discord.Message:
        channel = self.client.get_partial_messageable(job.channel_id)
        kwargs = {"view": view} if view is not None else {}
        return await channel.send(text, reference=_reply(job, job.reply_to_message_id), nonce=f"s{job.id}"[:25], **kwargs)

    # --- results -----------------------------------------------------------------------------------

    async def deliver(self, job: Job) -> bool:
        """Send the result of a DONE job; False when it was already delivered (or is not done)."""
        if job.state is not JobState.DONE or job.result_hash is None:
            return False
        png = await asyncio.to_thread(store.read_image, self.images_dir, job.result_hash)
        limit = job.upload_limit or DEFAULT_UPLOAD_LIMIT
        upload = await asyncio.to_thread(fit_upload, png, limit, f"restyle-{job.id}")
        parent = await asyncio.to_thread(store.find_job, self.db, job.parent_id) if job.parent_id else None
        embed = self.render_embed(job, upload.note, parent) if self.render_embed else None
        if embed is not None:
            embed.set_image(url=f"attachment://{upload.filename}")
        view = self.result_view(job) if self.result_view else None
        file = discord.File(io.BytesIO(upload.data), filename=upload.filename)
        extra = {"view": view} if view is not None else {}
        message_id = None
        if self.token_alive(job):
            try:
                message_id = await self._deliver_by_token(job, embed, file, extra)
            except discord.HTTPException as exc:
                if not self._token_died(job, exc):
                    raise
                file.reset()
        if message_id is None and job.interaction_id is None and job.status_message_id is not None:
            # A job started by a button: its status message is the bot's own, and becomes the result.
            message = await self._channel_message(job, job.status_message_id).edit(
                content=f"<@{job.owner_id}>", embed=embed, attachments=[file], **extra
            )
            message_id = message.id
        if message_id is None and job.ephemeral:
            message_id = await self._deliver_privately(job, embed, file, extra)
        if message_id is None:
            message_id = await self._deliver_to_channel(job, embed, file, extra)
        claimed = await asyncio.to_thread(store.claim_delivery, self.db, job.id, message_id)
        if not claimed:
            log.info("job %s was delivered already; message %s is the same delivery", job.id, message_id)
        return claimed

    async def _deliver_by_token(self, job: Job, embed: discord.Embed | None, file: discord.File, extra: dict) -> int:
        if job.status_message_id is not None:
            # Editing the status message: doing it twice after a crash still leaves one result.
            message = await self._webhook(job).edit_message(
                job.status_message_id, content="", embed=embed, attachments=[file], **extra
            )
        else:
            message = await self._webhook(job).send(embed=embed, file=file, ephemeral=job.ephemeral, wait=True, **extra)
        return message.id

    async def _deliver_privately(self, job: Job, embed: discord.Embed | None, file: discord.File, extra: dict) -> int:
        """A private result that outlived its interaction token goes by direct message, not to the channel."""
        try:
            user = await self.client.fetch_user(job.owner_id)
            message = await user.send(
                "Your private result is ready.", embed=embed, file=file, nonce=f"r{job.id}"[:25], **extra
            )
        except discord.Forbidden:
            # Direct messages closed: tell the owner in the channel, without the image.
            channel = self.client.get_partial_messageable(job.channel_id)
            message = await channel.send(
                f"<@{job.owner_id}> your private result is ready, but I cannot send you a direct message: allow "
                "direct messages from this server's members, then use Re-roll or /history.",
                nonce=f"r{job.id}"[:25],
                allowed_mentions=discord.AllowedMentions(users=[discord.Object(job.owner_id)]),
            )
        return message.id

    async def _deliver_to_channel(self, job: Job, embed: discord.Embed | None, file: discord.File, extra: dict) -> int:
        channel = self.client.get_partial_messageable(job.channel_id)
        reference = _reply(job, job.status_message_id or job.reply_to_message_id)
        # The nonce makes a resend after a crash return the first message instead of a second one.
        message = await channel.send(
            f"<@{job.owner_id}> your result is ready",
            embed=embed,
            file=file,
            reference=reference,
            nonce=f"r{job.id}"[:25],
            allowed_mentions=discord.AllowedMentions(users=[discord.Object(job.owner_id)]),
            **extra,
        )
        if job.status_message_id and job.status_message_id != message.id and not job.ephemeral:
            try:
                await self._channel_message(job, job.status_message_id).edit(content="Done: the result is below.", view=None)
            except discord.HTTPException as exc:
                log.info("could not tidy the status of job %s: %s", job.id, exc.status)
        return message.id

    async def notify(self, job: Job) -> bool:
        """Tell the owner that a job failed or was cancelled, once."""
        if job.state is JobState.FAILED:
            text = f"Sorry, that did not work: {job.error}"
        elif job.state is JobState.CANCELLED:
            text = "Cancelled."
        else:
            return False
        if not await asyncio.to_thread(store.mark_notified, self.db, job.id):
            return False
        if job.status_message_id is not None and (self.token_alive(job) or not job.ephemeral):
            await self.status(job, text, running=False)
        else:
            channel = self.client.get_partial_messageable(job.channel_id)
            await channel.send(f"<@{job.owner_id}> {text}", nonce=f"n{job.id}"[:25])
        return True
