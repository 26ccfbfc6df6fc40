"""What the fake Discord holds, and the JSON payloads discord.py expects for each of it.

Entities (users, roles, channels, guilds, messages, attachments) are mutable dataclasses that render
themselves with ``to_payload()``. Records (requests, callbacks, interactions) are what tests inspect.
Shapes follow the Discord API v10 as discord.py 2.7 parses it: keys it reads with ``data[...]``
are always present.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import discord

__all__ = [
    "ALL_PERMISSIONS",
    "BOT_PERMISSIONS",
    "EPHEMERAL",
    "EVERYONE_PERMISSIONS",
    "LOADING",
    "MODERATOR_PERMISSIONS",
    "Callback",
    "CallbackType",
    "FakeAttachment",
    "FakeChannel",
    "FakeGuild",
    "FakeInteraction",
    "FakeMember",
    "FakeMessage",
    "FakeRole",
    "FakeUser",
    "MessageEdit",
    "RecordedRequest",
    "UploadedFile",
    "iso_time",
    "new_snowflake",
]

DISCORD_EPOCH_MS = 1_420_070_400_000

#: Message flags the fake looks at.
EPHEMERAL = 1 << 6
LOADING = 1 << 7

ALL_PERMISSIONS = discord.Permissions.all().value
#: What @everyone may do in a fresh guild: talk, upload, react, run commands.
EVERYONE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    read_message_history=True,
    embed_links=True,
    attach_files=True,
    add_reactions=True,
    use_external_emojis=True,
    use_application_commands=True,
).value
#: The "Moderator" role of the default guild.
MODERATOR_PERMISSIONS = discord.Permissions(manage_guild=True, manage_messages=True).value
#: The bot's own role: what an invite link for an image bot would ask for.
BOT_PERMISSIONS = EVERYONE_PERMISSIONS | discord.Permissions(manage_messages=True).value

_counter = itertools.count(1)


def new_snowflake() -> int:
    """A fresh id that sorts after every earlier one, with the time in the high bits as Discord's do."""
    millis = int(time.time() * 1000) - DISCORD_EPOCH_MS
    return (millis << 22) | (next(_counter) & 0x3FFFFF)


def iso_time(snowflake: int | None = None) -> str:
    """ISO 8601 time of a snowflake (or now), the format Discord uses for timestamps."""
    millis = (snowflake >> 22) + DISCORD_EPOCH_MS if snowflake else time.time() * 1000
    return dt.datetime.fromtimestamp(millis / 1000, dt.UTC).isoformat()


class CallbackType(IntEnum):
    """Interaction callback types (what ``InteractionResponse`` methods send)."""

    PONG = 1
    CHANNEL_MESSAGE = 4  #: send_message
    DEFERRED_CHANNEL_MESSAGE = 5  #: defer() on a command: "Bot is thinking..."
    DEFERRED_UPDATE_MESSAGE = 6  #: defer() on a component
    UPDATE_MESSAGE = 7  #: edit_message
    AUTOCOMPLETE_RESULT = 8
    MODAL = 9  #: send_modal
    PREMIUM_REQUIRED = 10
    LAUNCH_ACTIVITY = 12


# -- entities ------------------------------------------------------------------------------------------


@dataclass(eq=False)
class FakeUser:
    """A Discord user (a person, or the bot itself with ``bot=True``)."""

    name: str
    id: int = field(default_factory=new_snowflake)
    bot: bool = False
    global_name: str | None = None

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }


@dataclass(eq=False)
class FakeRole:
    name: str
    permissions: int = 0
    id: int = field(default_factory=new_snowflake)
    position: int = 1

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
            "icon": None,
            "unicode_emoji": None,
        }


@dataclass(eq=False)
class FakeChannel:
    """A guild text channel (type 0); ``guild_id`` is set when a guild takes it."""

    name: str
    id: int = field(default_factory=new_snowflake)
    type: int = 0
    guild_id: int | None = None
    position: int = 0
    nsfw: bool = False
    topic: str | None = None

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [],
            "nsfw": self.nsfw,
            "topic": self.topic,
            "parent_id": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
        }
        if self.guild_id is not None:
            payload["guild_id"] = str(self.guild_id)
        return payload


@dataclass(eq=False)
class FakeMember:
    user: FakeUser
    roles: list[FakeRole] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = field(default_factory=iso_time)

    def to_payload(self, permissions: int | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "user": self.user.to_payload(),
            "roles": [str(role.id) for role in self.roles],
            "nick": self.nick,
            "avatar": None,
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if permissions is not None:  # only interactions carry the resolved permissions
            payload["permissions"] = str(permissions)
        return payload


@dataclass(eq=False)
class FakeGuild:
    """A guild with its roles (besides @everyone, whose id is the guild's), channels and members.

    Nobody owns it by default (``owner_id`` points at no member) because ownership grants every
    permission and would hide permission checks.
    """

    name: str
    id: int = field(default_factory=new_snowflake)
    everyone_permissions: int = EVERYONE_PERMISSIONS
    roles: list[FakeRole] = field(default_factory=list)
    channels: list[FakeChannel] = field(default_factory=list)
    members: list[FakeMember] = field(default_factory=list)
    owner_id: int = field(default_factory=new_snowflake)

    def __post_init__(self) -> None:
        for channel in self.channels:
            channel.guild_id = self.id

    def add_channel(self, name: str, *, type: int = 0) -> FakeChannel:
        channel = FakeChannel(name, type=type, guild_id=self.id, position=len(self.channels))
        self.channels.append(channel)
        return channel

    def add_role(self, name: str, permissions: int = 0) -> FakeRole:
        role = FakeRole(name, permissions, position=len(self.roles) + 1)
        self.roles.append(role)
        return role

    def add_member(self, user: FakeUser, *roles: FakeRole) -> FakeMember:
        member = FakeMember(user, list(roles))
        self.members.append(member)
        return member

    def member(self, user_id: int) -> FakeMember | None:
        return next((m for m in self.members if m.user.id == user_id), None)

    def permissions_of(self, user_id: int) -> int:
        """Guild-level permissions, as Discord computes them when no channel overwrites exist."""
        member = self.member(user_id)
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        value = self.everyone_permissions
        for role in member.roles if member else ():
            value |= role.permissions
        administrator = discord.Permissions(administrator=True).value
        return ALL_PERMISSIONS if value & administrator else value

    def to_payload(self) -> dict[str, Any]:
        """The GUILD_CREATE payload: everything discord.py caches, with member_count equal to the
        members sent, so discord.py considers the guild chunked and never asks for more."""
        everyone = FakeRole("@everyone", self.everyone_permissions, id=self.id, position=0)
        return {
            "id": str(self.id),
            "name": self.name,
            "owner_id": str(self.owner_id),
            "unavailable": False,
            "large": False,
            "member_count": len(self.members),
            "joined_at": iso_time(self.id),
            "roles": [everyone.to_payload(), *(role.to_payload() for role in self.roles)],
            "channels": [channel.to_payload() for channel in self.channels],
            "members": [member.to_payload() for member in self.members],
            "threads": [],
            "voice_states": [],
            "presences": [],
            "emojis": [],
            "stickers": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "features": [],
            "preferred_locale": "en-US",
            "premium_tier": 0,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "system_channel_id": None,
            "icon": None,
        }


@dataclass(eq=False)
class FakeAttachment:
    """A file the fake serves at ``url`` (what ``discord.Attachment.read()`` fetches)."""

    id: int
    filename: str
    data: bytes
    url: str
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    description: str | None = None

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": len(self.data),
            "url": self.url,
            "proxy_url": self.url,
            "content_type": self.content_type,
            "width": self.width,
            "height": self.height,
        }
        if self.description is not None:
            payload["description"] = self.description
        return payload


@dataclass
class MessageEdit:
    """One edit of a message: when, what was sent, and the message payload just before it."""

    time: float
    changes: dict[str, Any]
    before: dict[str, Any]


@dataclass(eq=False)
class FakeMessage:
    """A message in a channel: sent by a user (``FakeDiscord.user_message``) or by the bot (through a
    channel, an interaction response or a followup). ``created_at`` is on the fake's clock."""

    id: int
    channel_id: int
    guild_id: int | None
    author: FakeUser
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[FakeAttachment] = field(default_factory=list)
    flags: int = 0
    type: int = 0
    message_reference: dict[str, Any] | None = None
    nonce: str | None = None
    webhook_id: int | None = None
    interaction_metadata: dict[str, Any] | None = None
    created_at: float = 0.0
    edited_at: float | None = None
    edits: list[MessageEdit] = field(default_factory=list)
    reactions: list[str] = field(default_factory=list)
    deleted: bool = False

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """Still "Bot is thinking...": deferred and not edited yet."""
        return bool(self.flags & LOADING)

    def walk_components(self) -> list[dict[str, Any]]:
        """Every component, the ones inside rows, containers, sections and labels included."""
        found: list[dict[str, Any]] = []
        pending = list(self.components)
        while pending:
            component = pending.pop(0)
            found.append(component)
            pending.extend(component.get("components", []))
            pending.extend(c for key in ("accessory", "component") if (c := component.get(key)))
        return found

    @property
    def custom_ids(self) -> list[str]:
        return [c["custom_id"] for c in self.walk_components() if "custom_id" in c]

    def component(self, custom_id: str) -> dict[str, Any] | None:
        return next((c for c in self.walk_components() if c.get("custom_id") == custom_id), None)

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "author": self.author.to_payload(),
            "content": self.content,
            "timestamp": iso_time(self.id),
            "edited_timestamp": iso_time() if self.edited_at is not None else None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [a.to_payload() for a in self.attachments],
            "embeds": self.embeds,
            "components": self.components,
            "pinned": False,
            "type": self.type,
            "flags": self.flags,
        }
        optional = {
            "guild_id": str(self.guild_id) if self.guild_id else None,
            "nonce": self.nonce,
            "message_reference": self.message_reference,
            "webhook_id": str(self.webhook_id) if self.webhook_id else None,
            "application_id": str(self.webhook_id) if self.webhook_id else None,
            "interaction_metadata": self.interaction_metadata,
        }
        payload.update({key: value for key, value in optional.items() if value is not None})
        return payload


# -- records -------------------------------------------------------------------------------------------


@dataclass
class UploadedFile:
    """A file part of a multipart request (``files[n]``)."""

    field: str
    filename: str
    content_type: str | None
    data: bytes


@dataclass
class RecordedRequest:
    """One HTTP request the bot made. ``path`` is relative to the API base (``/channels/1/messages``),
    or the raw path for attachment downloads; ``json`` is the body (``payload_json`` for multipart).
    ``matched`` is False for a route the fake does not know; ``status`` is what the fake answered."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[UploadedFile]
    headers: dict[str, str]
    time: float
    status: int = 0
    matched: bool = True


@dataclass
class Callback:
    """The interaction callback the bot sent: its type, ``data`` (the modal, for type 9), files."""

    type: CallbackType | int
    data: dict[str, Any]
    files: list[UploadedFile]
    time: float


@dataclass(eq=False)
class FakeInteraction:
    """An interaction the fake created, and everything the bot answered to it.

    ``original`` is the message ``@original`` names (the response message, or for a component the
    message the component is on); ``followups`` are the webhook messages sent with its token.
    Times are on the fake's clock.
    """

    id: int
    token: str
    type: int
    user: FakeUser
    channel: FakeChannel
    payload: dict[str, Any]
    created_at: float
    message: FakeMessage | None = None
    callback: Callback | None = None
    original: FakeMessage | None = None
    followups: list[FakeMessage] = field(default_factory=list)
    _answered: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def callback_time(self) -> float | None:
        """When the callback arrived (fake clock), or None."""
        return self.callback.time if self.callback else None

    @property
    def ack_latency(self) -> float | None:
        """Seconds between the interaction and its callback: Discord allows 3."""
        return None if self.callback is None else self.callback.time - self.created_at

    def record_callback(self, callback: Callback) -> None:
        """Called by the fake when the bot's callback is accepted; wakes ``wait_callback``."""
        self.callback = callback
        self._answered.set()

    async def wait_callback(self, timeout: float = 5.0) -> Callback:
        """Wait for the bot's callback; TimeoutError if none comes in ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._answered.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"no callback for interaction {self.id} within {timeout}s") from None
        assert self.callback is not None
        return self.callback
