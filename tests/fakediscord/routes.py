"""The fake Discord's HTTP routes: REST, interaction callbacks and webhooks, and attachment files.

``Routes`` adds to ``World`` one handler per route Discord has and discord.py uses: each takes the
recorded request and the path parameters and returns a ``Reply``. Errors are Discord's (status, JSON
``code`` and ``message``), so discord.py raises the same NotFound, Forbidden or HTTPException it would
in production. Routes the fake lacks answer 404 and are marked ``matched=False`` on the record.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import unquote

from .interactions import APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT
from .payloads import (
    EPHEMERAL,
    LOADING,
    Callback,
    CallbackType,
    FakeChannel,
    FakeInteraction,
    FakeMessage,
    RecordedRequest,
    UploadedFile,
    new_snowflake,
)
from .world import CHAT_INPUT_COMMAND, CONTEXT_MENU_COMMAND, DEFAULT, REPLY, World

__all__ = ["Reply", "Routes", "discord_error"]

log = logging.getLogger(__name__)

#: Permission bits the fake checks on channel messages.
VIEW_CHANNEL, SEND_MESSAGES, MANAGE_MESSAGES, ATTACH_FILES = 1 << 10, 1 << 11, 1 << 13, 1 << 15
#: Which callbacks Discord accepts for each interaction type (autocomplete, 4, only takes 8).
ALLOWED_CALLBACKS = {
    APPLICATION_COMMAND: {4, 5, 9, 10, 12},
    MESSAGE_COMPONENT: {4, 5, 6, 7, 9, 10},
    MODAL_SUBMIT: {4, 5, 6, 7, 10},
    4: {8},
}


@dataclass
class Reply:
    """What a handler answers: JSON ``body`` (or raw bytes with ``content_type``), status, headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def discord_error(status: int, code: int, message: str) -> Reply:
    """Discord's error body. discord.py raises NotFound/Forbidden/HTTPException from it, with ``code``."""
    return Reply(status, {"message": message, "code": code})


@dataclass
class _Route:
    method: str
    regex: re.Pattern[str]
    handler: Callable[..., Awaitable[Reply]]
    auth: bool

    @classmethod
    def make(cls, method: str, template: str, handler: Callable[..., Awaitable[Reply]], *, auth: bool = True) -> _Route:
        # "/channels/{channel_id}/messages" -> named groups: digits for ids, one path segment otherwise
        def group(match: re.Match[str]) -> str:
            return f"(?P<{match[1]}>{'[0-9]+' if match[1].endswith('_id') else '[^/]+'})"

        pattern = re.sub(r"\{(\w+)\}", group, re.escape(template).replace(r"\{", "{").replace(r"\}", "}"))
        return cls(method, re.compile(pattern), handler, auth)


class Routes(World):
    """The HTTP face of a ``World``: ``_dispatch`` finds the handler for an API request."""

    @cached_property
    def _routes(self) -> list[_Route]:
        return self._route_table()

    async def _dispatch(self, record: RecordedRequest) -> Reply:
        for route in self._routes:
            match = route.regex.fullmatch(record.path)
            if route.method != record.method or match is None:
                continue
            if route.auth and record.headers.get("Authorization") != f"Bot {self.token}":
                return discord_error(401, 0, "401: Unauthorized")
            return await route.handler(record, **match.groupdict())
        record.matched = False
        log.warning("fake discord has no route for %s %s", record.method, record.path)
        return discord_error(404, 0, "404: Not Found")

    def _serve_file(self, record: RecordedRequest) -> Reply:
        match = re.fullmatch(r"/attachments/(\d+)/[^/]+", record.path)
        attachment = self._files.get(int(match[1])) if match else None
        if attachment is None:
            record.matched = match is not None
            return Reply(404, b"not found", content_type="text/plain")
        return Reply(200, attachment.data, content_type=attachment.content_type or "application/octet-stream")

    def _route_table(self) -> list[_Route]:
        r = _Route.make
        message = "/channels/{channel_id}/messages/{message_id}"
        webhook_message = "/webhooks/{app_id}/{token}/messages/{target}"  # an id or @original
        return [
            r("GET", "/users/@me", self._get_me),
            r("GET", "/users/{user_id}", self._get_user),
            r("POST", "/users/@me/channels", self._create_dm),
            r("GET", "/oauth2/applications/@me", self._get_application),
            r("GET", "/applications/{app_id}/commands", self._get_commands),
            r("PUT", "/applications/{app_id}/commands", self._put_commands),
            r("GET", "/applications/{app_id}/guilds/{guild_id}/commands", self._get_commands),
            r("PUT", "/applications/{app_id}/guilds/{guild_id}/commands", self._put_commands),
            r("GET", "/guilds/{guild_id}/members/{user_id}", self._get_member),
            r("GET", "/channels/{channel_id}", self._get_channel),
            r("POST", "/channels/{channel_id}/typing", self._typing),
            r("POST", "/channels/{channel_id}/messages", self._create_message),
            r("GET", message, self._get_message),
            r("PATCH", message, self._edit_message),
            r("DELETE", message, self._delete_message),
            r("PUT", message + "/reactions/{emoji}/@me", self._add_reaction),
            r("POST", "/interactions/{interaction_id}/{token}/callback", self._callback, auth=False),
            r("POST", "/webhooks/{app_id}/{token}", self._followup, auth=False),
            r("GET", webhook_message, self._get_webhook_message, auth=False),
            r("PATCH", webhook_message, self._edit_webhook_message, auth=False),
            r("DELETE", webhook_message, self._delete_webhook_message, auth=False),
        ]

    # -- REST: users, application, commands, guilds, channels ------------------------------------------

    async def _get_me(self, record: RecordedRequest) -> Reply:
        return Reply(body={**self.bot_user.to_payload(), "verified": True, "mfa_enabled": False, "flags": 0})

    async def _get_user(self, record: RecordedRequest, user_id: str) -> Reply:
        user = self._user(user_id)
        return Reply(body=user.to_payload()) if user else discord_error(404, 10013, "Unknown User")

    async def _get_application(self, record: RecordedRequest) -> Reply:
        return Reply(
            body={
                "id": str(self.application_id),
                "name": self.bot_user.name,
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": self.app_owner.to_payload(),
                "team": None,
                "verify_key": "0" * 64,
                "flags": 0,
                "bot": self.bot_user.to_payload(),
                "interactions_endpoint_url": None,
            }
        )

    async def _get_commands(self, record: RecordedRequest, app_id: str, guild_id: str | None = None) -> Reply:
        return Reply(body=self._commands.get(int(guild_id) if guild_id else None, []))

    async def _put_commands(self, record: RecordedRequest, app_id: str, guild_id: str | None = None) -> Reply:
        """Bulk overwrite: the list replaces what was there; a command keeps its id across syncs."""
        if int(app_id) != self.application_id:
            return discord_error(404, 10002, "Unknown Application")
        if guild_id is not None and self._guild(guild_id) is None:
            return discord_error(403, 50001, "Missing Access")
        if not isinstance(record.json, list):
            return discord_error(400, 50035, "Invalid Form Body: expected a list of commands")
        key = int(guild_id) if guild_id else None
        previous = {(c["name"], c.get("type", 1)): c["id"] for c in self._commands.get(key, [])}
        stored = []
        for body in record.json:
            command_id = previous.get((body["name"], body.get("type", 1))) or str(new_snowflake())
            defaults = {"type": 1, "description": "", "options": [], "default_member_permissions": None, "nsfw": False}
            command = {**defaults, **body, "id": command_id, "application_id": str(self.application_id)}
            command["version"] = str(new_snowflake())
            if guild_id is not None:
                command["guild_id"] = guild_id
            stored.append(command)
        self._commands[key] = stored
        return Reply(body=stored)

    async def _get_member(self, record: RecordedRequest, guild_id: str, user_id: str) -> Reply:
        guild = self._guild(guild_id)
        member = guild.member(int(user_id)) if guild else None
        return Reply(body=member.to_payload()) if member else discord_error(404, 10007, "Unknown Member")

    async def _get_channel(self, record: RecordedRequest, channel_id: str) -> Reply:
        channel = self._channel(channel_id)
        return Reply(body=channel.to_payload()) if channel else discord_error(404, 10003, "Unknown Channel")

    async def _typing(self, record: RecordedRequest, channel_id: str) -> Reply:
        return Reply(204) if self._channel(channel_id) else discord_error(404, 10003, "Unknown Channel")

    async def _create_message(self, record: RecordedRequest, channel_id: str) -> Reply:
        channel = self._channel(channel_id)
        if channel is None:
            return discord_error(404, 10003, "Unknown Channel")
        body: dict[str, Any] = record.json or {}
        needed = VIEW_CHANNEL | SEND_MESSAGES | (ATTACH_FILES if record.files else 0)
        in_guild = channel.guild_id is not None  # a DM needs no permission
        if in_guild and self._guild_of(channel).permissions_of(self.bot_user.id) & needed != needed:
            return discord_error(403, 50013, "Missing Permissions")
        if body.get("enforce_nonce") and body.get("nonce") and (sent := self._sent_with_nonce(channel, body["nonce"])):
            return Reply(body=self._visible_payload(sent))  # a retried create: Discord answers the first message
        if problem := self._message_problem(body, record.files):
            return problem
        reference = body.get("message_reference")
        if reference is not None:
            target = self._messages.get(int(reference.get("message_id") or 0))
            if target is None and reference.get("fail_if_not_exists", True):
                return discord_error(400, 50035, "Invalid Form Body: message_reference: Unknown message")
            body = {**body, "message_reference": {"type": 0, "channel_id": channel_id, **reference}}
        message = self._new_message(channel, self.bot_user, body, record.files, type=REPLY if reference else DEFAULT)
        await self._announce("MESSAGE_CREATE", message)
        return Reply(body=self._visible_payload(message))

    async def _create_dm(self, record: RecordedRequest) -> Reply:
        """Open (or find) the direct-message channel with ``recipient_id``."""
        recipient = self._user((record.json or {}).get("recipient_id") or 0)
        if recipient is None:
            return discord_error(400, 50035, "Invalid Form Body: recipient_id: Unknown user")
        channel = self.dm_channels.setdefault(recipient.id, FakeChannel(f"dm-{recipient.name}", type=1))
        payload = {"id": str(channel.id), "type": 1, "last_message_id": None, "recipients": [recipient.to_payload()]}
        return Reply(body=payload)

    def _sent_with_nonce(self, channel: FakeChannel, nonce: str) -> FakeMessage | None:
        return next((m for m in self.messages(channel) if m.nonce == nonce), None)

    def _message_problem(self, body: dict[str, Any], files: list[UploadedFile]) -> Reply | None:
        if not (body.get("content") or body.get("embeds") or body.get("components") or files or body.get("sticker_ids")):
            return discord_error(400, 50006, "Cannot send an empty message")
        if len(body.get("content") or "") > 2000:
            return discord_error(400, 50035, "Invalid Form Body: content: Must be 2000 or fewer in length.")
        return None

    def _channel_message(self, channel_id: str, message_id: str) -> FakeMessage | None:
        message = self._messages.get(int(message_id))
        if message is None or message.deleted or message.channel_id != int(channel_id) or message.ephemeral:
            return None
        return message

    async def _get_message(self, record: RecordedRequest, channel_id: str, message_id: str) -> Reply:
        message = self._channel_message(channel_id, message_id)
        return Reply(body=self._visible_payload(message)) if message else discord_error(404, 10008, "Unknown Message")

    async def _edit_message(self, record: RecordedRequest, channel_id: str, message_id: str) -> Reply:
        message = self._channel_message(channel_id, message_id)
        if message is None:
            return discord_error(404, 10008, "Unknown Message")
        if message.author is not self.bot_user:
            return discord_error(403, 50005, "Cannot edit a message authored by another user")
        self._apply_edit(message, record.json or {}, record.files)
        await self._announce("MESSAGE_UPDATE", message)
        return Reply(body=self._visible_payload(message))

    async def _delete_message(self, record: RecordedRequest, channel_id: str, message_id: str) -> Reply:
        message = self._channel_message(channel_id, message_id)
        if message is None:
            return discord_error(404, 10008, "Unknown Message")
        guild = self._guild(message.guild_id or 0)
        may_manage = guild is not None and guild.permissions_of(self.bot_user.id) & MANAGE_MESSAGES
        if message.author is not self.bot_user and not may_manage:
            return discord_error(403, 50013, "Missing Permissions")
        message.deleted = True
        await self._announce("MESSAGE_DELETE", message)
        return Reply(204)

    async def _add_reaction(self, record: RecordedRequest, channel_id: str, message_id: str, emoji: str) -> Reply:
        message = self._channel_message(channel_id, message_id)
        if message is None:
            return discord_error(404, 10008, "Unknown Message")
        message.reactions.append(unquote(emoji))
        return Reply(204)

    # -- interactions: callbacks and webhooks ----------------------------------------------------------

    def _token_problem(self, interaction: FakeInteraction) -> Reply | None:
        if self._token_expired(interaction):
            return discord_error(401, 50027, "Invalid Webhook Token")
        return None

    async def _callback(self, record: RecordedRequest, interaction_id: str, token: str) -> Reply:
        interaction = self._interaction_by_token.get(token)
        if interaction is None or interaction.id != int(interaction_id):
            return discord_error(404, 10062, "Unknown interaction")
        if problem := self._token_problem(interaction):
            return problem
        late = self.callback_deadline is not None and self.now() - interaction.created_at > self.callback_deadline
        if late:
            return discord_error(404, 10062, "Unknown interaction")
        if interaction.callback is not None:
            return discord_error(400, 40060, "Interaction has already been acknowledged.")
        body: dict[str, Any] = record.json or {}
        kind = _callback_type(body.get("type"))
        if kind not in ALLOWED_CALLBACKS.get(interaction.type, set()) or (kind in (6, 7) and interaction.message is None):
            return discord_error(
                400, 50035, f"Invalid Form Body: callback type {kind} for interaction type {interaction.type}"
            )
        data = body.get("data") or {}
        if kind == CallbackType.CHANNEL_MESSAGE and (problem := self._message_problem(data, record.files)):
            return problem
        message = await self._apply_callback(interaction, kind, data, record.files)
        interaction.record_callback(Callback(kind, data, record.files, self.now()))
        return Reply(body=self._callback_body(interaction, kind, message))

    async def _apply_callback(
        self, interaction: FakeInteraction, kind: CallbackType | int, data: dict[str, Any], files: list[UploadedFile]
    ) -> FakeMessage | None:
        if kind in (CallbackType.CHANNEL_MESSAGE, CallbackType.DEFERRED_CHANNEL_MESSAGE):
            body = data if kind == CallbackType.CHANNEL_MESSAGE else {"flags": (data.get("flags") or 0) & EPHEMERAL}
            loading = LOADING if kind == CallbackType.DEFERRED_CHANNEL_MESSAGE else 0
            message = self._new_message(
                interaction.channel,
                self.bot_user,
                body,
                files,
                type=_response_type(interaction),
                flags=loading,
                interaction=interaction,
            )
            interaction.original = message
            await self._announce("MESSAGE_CREATE", message)
            return message
        if kind in (CallbackType.DEFERRED_UPDATE_MESSAGE, CallbackType.UPDATE_MESSAGE):
            interaction.original = message = interaction.message
            assert message is not None  # checked by the caller
            if kind == CallbackType.UPDATE_MESSAGE:
                self._apply_edit(message, data, files)
                await self._announce("MESSAGE_UPDATE", message)
            return message
        if kind == CallbackType.MODAL:
            self._modals[(interaction.user.id, data.get("custom_id", ""))] = interaction
        return None

    def _callback_body(
        self, interaction: FakeInteraction, kind: CallbackType | int, message: FakeMessage | None
    ) -> dict[str, Any]:
        """The ``with_response=1`` answer discord.py turns into an InteractionCallbackResponse."""
        summary: dict[str, Any] = {"id": str(interaction.id), "type": interaction.type}
        resource: dict[str, Any] = {"type": int(kind)}
        if message is not None:
            summary["response_message_id"] = str(message.id)
            summary["response_message_loading"] = message.loading
            summary["response_message_ephemeral"] = message.ephemeral
            resource["message"] = message.to_payload()
        return {"interaction": summary, "resource": resource}

    def _webhook_interaction(self, app_id: str, token: str) -> FakeInteraction | Reply:
        """The interaction a webhook token belongs to, or Discord's answer when there is none."""
        interaction = self._interaction_by_token.get(token)
        if int(app_id) != self.application_id or interaction is None:
            return discord_error(404, 10015, "Unknown Webhook")
        if problem := self._token_problem(interaction):
            return problem
        if interaction.callback is None:  # followups need an acknowledged interaction
            return discord_error(404, 10015, "Unknown Webhook")
        return interaction

    def _webhook_message(self, app_id: str, token: str, target: str) -> FakeMessage | Reply:
        """A message of the interaction the webhook token belongs to ("@original" or an id of its
        followups), or Discord's answer when there is none."""
        interaction = self._webhook_interaction(app_id, token)
        if isinstance(interaction, Reply):
            return interaction
        owned = [m for m in (interaction.original, *interaction.followups) if m is not None and not m.deleted]
        if target == "@original":
            message = interaction.original if interaction.original in owned else None
        else:
            message = next((m for m in owned if str(m.id) == target), None)
        return message if message is not None else discord_error(404, 10008, "Unknown Message")

    async def _followup(self, record: RecordedRequest, app_id: str, token: str) -> Reply:
        interaction = self._webhook_interaction(app_id, token)
        if isinstance(interaction, Reply):
            return interaction
        body: dict[str, Any] = record.json or {}
        if problem := self._message_problem(body, record.files):
            return problem
        message = self._new_message(
            interaction.channel, self.bot_user, body, record.files, type=_response_type(interaction), interaction=interaction
        )
        interaction.followups.append(message)
        await self._announce("MESSAGE_CREATE", message)
        wait = record.query.get("wait", "false").lower() in ("1", "true")
        return Reply(body=message.to_payload()) if wait else Reply(204)

    async def _get_webhook_message(self, record: RecordedRequest, app_id: str, token: str, target: str) -> Reply:
        message = self._webhook_message(app_id, token, target)
        return message if isinstance(message, Reply) else Reply(body=message.to_payload())

    async def _edit_webhook_message(self, record: RecordedRequest, app_id: str, token: str, target: str) -> Reply:
        message = self._webhook_message(app_id, token, target)
        if isinstance(message, Reply):
            return message
        self._apply_edit(message, record.json or {}, record.files)
        await self._announce("MESSAGE_UPDATE", message)
        return Reply(body=message.to_payload())

    async def _delete_webhook_message(self, record: RecordedRequest, app_id: str, token: str, target: str) -> Reply:
        message = self._webhook_message(app_id, token, target)
        if isinstance(message, Reply):
            return message
        message.deleted = True
        await self._announce("MESSAGE_DELETE", message)
        return Reply(204)


# -- helpers -------------------------------------------------------------------------------------------


def _callback_type(value: Any) -> CallbackType | int:
    try:
        return CallbackType(value)
    except ValueError:
        return int(value or 0)


def _response_type(interaction: FakeInteraction) -> int:
    """Message type of a response: 20 for slash commands, 23 for context menus, 0 otherwise."""
    if interaction.type != APPLICATION_COMMAND:
        return DEFAULT
    return CHAT_INPUT_COMMAND if interaction.payload["data"].get("type", 1) == 1 else CONTEXT_MENU_COMMAND
