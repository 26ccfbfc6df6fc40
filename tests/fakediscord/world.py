"""The fake Discord's state and its rules, with no HTTP in sight.

``World`` holds the guilds, users, messages, files, synced commands and interactions, the clock
tokens expire by, and the gateway session the bot hears events on. It creates and edits messages the
way Discord does (attachments kept or replaced, "thinking..." ended by the first edit, content hidden
without the message content intent). ``routes.Routes`` serves it over HTTP; ``server.FakeDiscord``
adds the server and the test-facing API.
"""

from __future__ import annotations

import io
import mimetypes
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

from PIL import Image, UnidentifiedImageError

from .gateway import GatewaySession, GatewayStats
from .interactions import interaction_payload
from .payloads import (
    BOT_PERMISSIONS,
    EPHEMERAL,
    LOADING,
    MODERATOR_PERMISSIONS,
    FakeAttachment,
    FakeChannel,
    FakeGuild,
    FakeInteraction,
    FakeMessage,
    FakeUser,
    MessageEdit,
    UploadedFile,
    new_snowflake,
)

__all__ = ["API_VERSION", "TOKEN_LIFETIME", "World"]

API_VERSION = 10
#: Interaction tokens (callbacks, followups, @original edits) work this long after the interaction.
TOKEN_LIFETIME = 15 * 60
#: Gateway intents the fake honours.
GUILD_MESSAGES, MESSAGE_CONTENT = 1 << 9, 1 << 15
#: Message types.
DEFAULT, REPLY, CHAT_INPUT_COMMAND, CONTEXT_MENU_COMMAND = 0, 19, 20, 23


class World:
    """Everything the fake Discord knows; see ``FakeDiscord`` for the parameters."""

    def __init__(
        self,
        *,
        guilds: Sequence[FakeGuild] = (),
        users: Sequence[FakeUser] = (),
        bot_permissions: int = BOT_PERMISSIONS,
        callback_deadline: float | None = 3.0,
        heartbeat_interval: float = 41.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = "fake-bot-token." + secrets.token_urlsafe(16)
        self.bot_user = FakeUser("Restyle", bot=True)
        # Applications made since 2020 share their id with their bot user.
        self.application_id = self.bot_user.id
        self.app_owner = FakeUser("owner")
        self.alice = FakeUser("alice")
        self.bob = FakeUser("bob")
        self.guild = FakeGuild("Restyle Test", channels=[FakeChannel("general")])
        self.channel = self.guild.channels[0]
        self.guild.add_member(self.alice, self.guild.add_role("Moderator", MODERATOR_PERMISSIONS))
        self.guild.add_member(self.bob)
        for user in users:
            self.guild.add_member(user)
        self.guilds = [self.guild, *guilds]
        for guild in self.guilds:
            guild.add_member(self.bot_user, guild.add_role(self.bot_user.name, bot_permissions))
        self.callback_deadline = callback_deadline
        self.clock = clock
        self._offset = 0.0
        self.interactions: list[FakeInteraction] = []
        self._interaction_by_token: dict[str, FakeInteraction] = {}  # a burst's callbacks look up here
        self._messages: dict[int, FakeMessage] = {}
        #: direct-message channels the bot opened, by recipient id (POST /users/@me/channels)
        self.dm_channels: dict[int, FakeChannel] = {}
        self._files: dict[int, FakeAttachment] = {}
        self._commands: dict[int | None, list[dict[str, Any]]] = {}
        self._modals: dict[tuple[int, str], FakeInteraction] = {}
        self.port = 0  # known once the server listens
        self.gateway = GatewaySession(
            token=self.token,
            ready=self._ready_payload,
            guilds=lambda: [guild.to_payload() for guild in self.guilds],
            resume_url="",
            heartbeat_interval=heartbeat_interval,
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        """What ``discord.http.Route.BASE`` must be."""
        return f"{self.base_url}/api/v{API_VERSION}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def gateway_stats(self) -> GatewayStats:
        return self.gateway.stats

    # -- the clock -------------------------------------------------------------------------------------

    def now(self) -> float:
        """The fake's time in seconds: ``clock()`` plus every ``advance``."""
        return self.clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock on, e.g. past the 15 minutes an interaction token lives."""
        self._offset += seconds

    # -- what tests read: messages and commands --------------------------------------------------------

    def messages(self, channel: FakeChannel | int | None = None, *, include_deleted: bool = False) -> list[FakeMessage]:
        """The bot's messages, oldest first, in one channel or all; ephemeral ones included."""
        channel_id = channel.id if isinstance(channel, FakeChannel) else channel
        return [
            m
            for m in self._messages.values()
            if m.author is self.bot_user
            and (channel_id is None or m.channel_id == channel_id)
            and (include_deleted or not m.deleted)
        ]

    def message(self, message_id: int) -> FakeMessage:
        return self._messages[message_id]

    def commands(self, guild: FakeGuild | None = None) -> list[dict[str, Any]]:
        """The application commands the bot synced, globally or to ``guild``."""
        return list(self._commands.get(guild.id if guild else None, []))

    # -- state and its rules ---------------------------------------------------------------------------

    def _guild(self, guild_id: int | str) -> FakeGuild | None:
        return next((g for g in self.guilds if g.id == int(guild_id)), None)

    def _channel(self, channel_id: int | str) -> FakeChannel | None:
        channels = [*(c for g in self.guilds for c in g.channels), *self.dm_channels.values()]
        return next((c for c in channels if c.id == int(channel_id)), None)

    def _guild_of(self, channel: FakeChannel) -> FakeGuild:
        guild = self._guild(channel.guild_id or 0)
        if guild is None:
            raise ValueError(f"channel {channel.name!r} belongs to no guild of the fake")
        return guild

    def _user(self, user_id: int | str) -> FakeUser | None:
        users = [self.bot_user, self.app_owner, *(m.user for g in self.guilds for m in g.members)]
        return next((u for u in users if u.id == int(user_id)), None)

    def _synced_command(self, name: str, kind: int, guild: FakeGuild) -> dict[str, Any]:
        candidates = [*self._commands.get(guild.id, []), *self._commands.get(None, [])]
        found = next((c for c in candidates if c["name"] == name and c.get("type", 1) == kind), None)
        if found is None:
            synced = sorted({c["name"] for c in candidates})
            raise LookupError(f"no command {name!r} of type {kind} is synced for {guild.name!r}; synced: {synced!r}")
        return found

    def _store_file(self, data: bytes, filename: str, content_type: str | None, description: str | None) -> FakeAttachment:
        attachment_id = new_snowflake()
        # Discord sniffs the type of uploads (discord.py always says application/octet-stream).
        if content_type in (None, "application/octet-stream"):
            content_type = mimetypes.guess_type(filename)[0] or content_type
        width, height = _image_size(data)
        url = f"{self.base_url}/attachments/{attachment_id}/{quote(filename)}"
        attachment = FakeAttachment(attachment_id, filename, data, url, content_type, width, height, description)
        self._files[attachment_id] = attachment
        return attachment

    def _new_message(
        self,
        channel: FakeChannel,
        author: FakeUser,
        body: dict[str, Any],
        files: list[UploadedFile],
        *,
        type: int = DEFAULT,
        flags: int = 0,
        interaction: FakeInteraction | None = None,
    ) -> FakeMessage:
        message = FakeMessage(
            id=new_snowflake(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=author,
            content=body.get("content") or "",
            embeds=body.get("embeds") or [],
            components=body.get("components") or [],
            attachments=self._attachments_from(body, files, keep=[]),
            flags=(body.get("flags") or 0) | flags,
            type=type,
            message_reference=body.get("message_reference"),
            nonce=body.get("nonce"),
            created_at=self.now(),
        )
        if interaction is not None:
            message.webhook_id = self.application_id
            message.interaction_metadata = self._interaction_metadata(interaction)
        self._messages[message.id] = message
        return message

    def _attachments_from(
        self, body: dict[str, Any], files: list[UploadedFile], keep: list[FakeAttachment]
    ) -> list[FakeAttachment]:
        """The attachments a create or edit leaves: ``body["attachments"]`` lists the ones to keep (by
        id) and the new uploads (by the index n of ``files[n]``); without it, all stay and all new
        files are added."""
        uploads = {f.field: f for f in files}
        declared = body.get("attachments")
        if declared is None:
            return keep + [self._store_file(f.data, f.filename, f.content_type, None) for f in files]
        kept = {str(a.id): a for a in keep}
        result: list[FakeAttachment] = []
        for entry in declared:
            upload = uploads.get(f"files[{entry.get('id')}]")
            if upload is not None:
                filename = entry.get("filename") or upload.filename
                result.append(self._store_file(upload.data, filename, upload.content_type, entry.get("description")))
            elif str(entry.get("id")) in kept:
                result.append(kept[str(entry["id"])])
        return result

    def _apply_edit(self, message: FakeMessage, body: dict[str, Any], files: list[UploadedFile]) -> None:
        before = message.to_payload()
        if "content" in body:
            message.content = body["content"] or ""
        if "embeds" in body:
            message.embeds = body["embeds"] or []
        if "components" in body:
            message.components = body["components"] or []
        if body.get("flags") is not None:
            message.flags = (message.flags & EPHEMERAL) | body["flags"]  # ephemeral is for life
        if "attachments" in body or files:
            message.attachments = self._attachments_from(body, files, keep=message.attachments)
        message.flags &= ~LOADING  # an edit ends "thinking..."
        message.edited_at = self.now()
        message.edits.append(MessageEdit(message.edited_at, body, before))

    def _reference_to(self, message: FakeMessage) -> dict[str, Any]:
        return {
            "type": 0,
            "message_id": str(message.id),
            "channel_id": str(message.channel_id),
            "guild_id": str(message.guild_id),
            "fail_if_not_exists": True,
        }

    def _interaction_metadata(self, interaction: FakeInteraction) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "id": str(interaction.id),
            "type": interaction.type,
            "user": interaction.user.to_payload(),
            "authorizing_integration_owners": interaction.payload["authorizing_integration_owners"],
        }
        if interaction.original is not None:
            metadata["original_response_message_id"] = str(interaction.original.id)
        if interaction.message is not None:
            metadata["interacted_message_id"] = str(interaction.message.id)
        return metadata

    def _visible_payload(self, message: FakeMessage) -> dict[str, Any]:
        """A message as the bot may see it: without the message content intent, other people's
        messages that don't mention the bot come without content, embeds, attachments or components."""
        payload = message.to_payload()
        own = message.author is self.bot_user
        if not (own or self.gateway.intents & MESSAGE_CONTENT or self.bot_user.mention in message.content):
            payload.update(content="", embeds=[], attachments=[], components=[])
        reference = message.message_reference
        if reference and (target := self._messages.get(int(reference.get("message_id") or 0))) is not None:
            payload["referenced_message"] = target.to_payload()
        return payload

    async def _announce(self, event: str, message: FakeMessage) -> None:
        """MESSAGE_CREATE/UPDATE/DELETE to the bot, which Discord sends with the guild messages intent
        and never for ephemeral messages."""
        if message.ephemeral or message.guild_id is None or not self.gateway.intents & GUILD_MESSAGES:
            return  # direct messages need the DIRECT_MESSAGES intent, which a bot without it never gets
        if event == "MESSAGE_DELETE":
            ids = {"id": str(message.id), "channel_id": str(message.channel_id), "guild_id": str(message.guild_id)}
            await self.gateway.dispatch(event, ids)
            return
        payload = self._visible_payload(message)
        guild = self._guild(message.guild_id or 0)
        member = guild.member(message.author.id) if guild else None
        if member is not None:  # gateway messages carry the author's member, without its user
            payload["member"] = {k: v for k, v in member.to_payload().items() if k != "user"}
        await self.gateway.dispatch(event, payload)

    async def _start_interaction(
        self,
        kind: int,
        user: FakeUser,
        channel: FakeChannel,
        data: dict[str, Any],
        *,
        message: FakeMessage | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        if self.gateway.session_id is None:
            raise RuntimeError("the bot has not identified on the gateway: start it (run_bot) first")
        interaction_id, token = new_snowflake(), secrets.token_urlsafe(48)
        payload = interaction_payload(
            interaction_id=interaction_id,
            token=token,
            type=kind,
            application_id=self.application_id,
            user=user,
            guild=self._guild_of(channel),
            channel=channel,
            data=data,
            locale=locale,
        )
        if message is not None:
            payload["message"] = message.to_payload()
        interaction = FakeInteraction(interaction_id, token, kind, user, channel, payload, self.now(), message=message)
        self.interactions.append(interaction)
        self._interaction_by_token[token] = interaction
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        return interaction

    def _ready_payload(self, session_id: str) -> dict[str, Any]:
        return {
            "v": API_VERSION,
            "user": {**self.bot_user.to_payload(), "verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(guild.id), "unavailable": True} for guild in self.guilds],
            "session_id": session_id,
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }

    def _token_expired(self, interaction: FakeInteraction) -> bool:
        return self.now() - interaction.created_at > TOKEN_LIFETIME


def _image_size(data: bytes) -> tuple[int | None, int | None]:
    """Width and height when ``data`` is an image Pillow can read, else (None, None)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None, None
