"""FakeDiscord: an aiohttp server on 127.0.0.1 that speaks enough of Discord for a real discord.py bot.

It serves the REST API under ``/api/v10``, the gateway at ``/gateway`` and files under
``/attachments``. Tests drive it from the users' side (``slash``, ``click``, ``submit_modal``,
``context_menu``, ``user_message``), read what the bot did (``messages``, ``interactions``,
``requests``) and break things (``fail_next``, ``drop_gateway``, ``advance``). The package docstring
lists the whole API.

Layers: ``World`` (state and rules) <- ``Routes`` (HTTP handlers) <- ``FakeDiscord`` (the server,
request recording, injected faults, and the test-facing API).
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar

from aiohttp import BodyPartReader, web

from .interactions import (
    APPLICATION_COMMAND,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    command_data,
    component_data,
    context_menu_data,
    modal_submission,
)
from .payloads import (
    BOT_PERMISSIONS,
    FakeChannel,
    FakeGuild,
    FakeInteraction,
    FakeMessage,
    FakeUser,
    RecordedRequest,
    UploadedFile,
)
from .routes import Reply, Routes, discord_error
from .world import API_VERSION, DEFAULT, REPLY

__all__ = ["FakeDiscord"]

log = logging.getLogger(__name__)
T = TypeVar("T")

API_PREFIX = f"/api/v{API_VERSION}"


@dataclass
class _Fault:
    method: str
    pattern: str
    status: int
    remaining: int
    retry_after: float
    applied: bool
    delay: float = 0.0  # seconds before answering; with status 0, the answer is the normal one

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and fnmatch.fnmatchcase(path, self.pattern)


class FakeDiscord(Routes):
    """A Discord API and gateway for one bot, on 127.0.0.1 and a free port.

    :param guilds: more guilds besides the default ``guild``; the bot joins each with ``bot_permissions``.
    :param users: more members of the default guild, without extra permissions.
    :param bot_permissions: what the bot's role grants in every guild.
    :param callback_deadline: seconds an interaction waits for its callback before Discord calls it
        unknown (10062); None for no limit.
    :param heartbeat_interval: seconds, told to the bot in HELLO.
    :param clock: seconds, for interaction deadlines and record times; ``advance`` adds to it.
    """

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
        super().__init__(
            guilds=guilds,
            users=users,
            bot_permissions=bot_permissions,
            callback_deadline=callback_deadline,
            heartbeat_interval=heartbeat_interval,
            clock=clock,
        )
        self.requests: list[RecordedRequest] = []
        #: Exceptions raised inside the fake's handlers (bugs in the fake); re-raised when it stops.
        self.server_errors: list[BaseException] = []
        self._faults: list[_Fault] = []
        self._runner: web.AppRunner | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        await self.stop()
        if exc_type is None and self.server_errors:
            raise AssertionError(f"fake discord crashed {len(self.server_errors)} time(s)") from self.server_errors[0]

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        # A burst of callbacks opens hundreds of connections at once: aiohttp's default backlog of
        # 128 overflows, and each dropped SYN costs the bot a 1 s retransmit Discord would not cause.
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.gateway.resume_url = self.gateway_url

    async def stop(self) -> None:
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- what tests do as users ------------------------------------------------------------------------

    def add_attachment(
        self, data: bytes, filename: str, content_type: str | None = None, *, description: str | None = None
    ) -> dict[str, Any]:
        """Store a file the fake serves, and return its attachment payload (for a slash option or
        ``user_message``). Images get their width and height."""
        return self._store_file(data, filename, content_type, description).to_payload()

    async def user_message(
        self,
        user: FakeUser,
        channel: FakeChannel | None = None,
        *,
        content: str = "",
        attachments: Sequence[dict[str, Any]] = (),
        reference: FakeMessage | None = None,
    ) -> FakeMessage:
        """``user`` posts a message (attachments from ``add_attachment``); the bot gets MESSAGE_CREATE,
        without content unless it asked for the message content intent or is mentioned."""
        channel = channel or self.channel
        files = [self._files[int(a["id"])] for a in attachments]
        ref = None if reference is None else self._reference_to(reference)
        message = self._new_message(channel, user, {"content": content, "message_reference": ref}, [])
        message.attachments = files
        message.type = REPLY if ref else DEFAULT
        await self._announce("MESSAGE_CREATE", message)
        return message

    async def slash(
        self,
        user: FakeUser,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        channel: FakeChannel | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """``user`` runs ``/name`` ("group sub" for subcommands) with ``options`` typed by the synced
        schema. The command must have been synced (globally or to the channel's guild)."""
        channel = channel or self.channel
        guild = self._guild_of(channel)
        path = name.split()
        command = self._synced_command(path[0], 1, guild)
        data = command_data(command, path, options or {}, guild)
        return await self._start_interaction(APPLICATION_COMMAND, user, channel, data, locale=locale)

    async def context_menu(
        self, user: FakeUser, name: str, target: FakeMessage | FakeUser, *, channel: FakeChannel | None = None
    ) -> FakeInteraction:
        """``user`` picks the synced context menu ``name`` on a message (type 3) or a user (type 2)."""
        if isinstance(target, FakeMessage):
            channel = channel or self._channel(target.channel_id)
        channel = channel or self.channel
        guild = self._guild_of(channel)
        command = self._synced_command(name, 2 if isinstance(target, FakeUser) else 3, guild)
        data = context_menu_data(command, target, guild)
        return await self._start_interaction(APPLICATION_COMMAND, user, channel, data)

    async def click(
        self, user: FakeUser, message: FakeMessage, custom_id: str, *, values: list[str] | None = None
    ) -> FakeInteraction:
        """``user`` clicks the button ``custom_id`` on ``message`` (or picks ``values`` in a select)."""
        data = component_data(message, custom_id, values)
        channel = self._channel(message.channel_id)
        assert channel is not None, f"message {message.id} is in no known channel"
        return await self._start_interaction(MESSAGE_COMPONENT, user, channel, data, message=message)

    async def submit_modal(
        self, user: FakeUser, custom_id: str, values: dict[str, Any], *, message: FakeMessage | None = None
    ) -> FakeInteraction:
        """``user`` submits the modal ``custom_id`` the bot showed them, inputs filled from ``values``.
        ``message`` defaults to the message of the component that opened the modal, as on Discord."""
        opener = self._modals.get((user.id, custom_id))
        if opener is None or opener.callback is None:
            shown = sorted(cid for uid, cid in self._modals if uid == user.id)
            raise LookupError(f"the bot showed {user.name!r} no modal {custom_id!r}; it showed {shown!r}")
        components, resolved = modal_submission(opener.callback.data, values)
        data: dict[str, Any] = {"custom_id": custom_id, "components": components}
        if resolved:
            data["resolved"] = resolved
        message = message or opener.message
        return await self._start_interaction(MODAL_SUBMIT, user, opener.channel, data, message=message)

    # -- what tests read: requests, waits --------------------------------------------------------------

    @property
    def unknown_requests(self) -> list[RecordedRequest]:
        """Requests to routes the fake does not serve (answered 404)."""
        return [r for r in self.requests if not r.matched]

    def requests_to(self, method: str, path_pattern: str) -> list[RecordedRequest]:
        """Recorded requests matching ``method`` ("*" for any) and a glob on the path."""
        return [r for r in self.requests if method in ("*", r.method) and fnmatch.fnmatchcase(r.path, path_pattern)]

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0, *, interval: float = 0.01) -> T:
        """Poll ``predicate`` until it returns something truthy, and return that; TimeoutError after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not (result := predicate()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout}s")
            await asyncio.sleep(interval)
        return result

    async def wait_for_message(
        self,
        predicate: Callable[[FakeMessage], bool] = lambda _: True,
        timeout: float = 5.0,
        *,
        channel: FakeChannel | int | None = None,
    ) -> FakeMessage:
        """The first bot message (oldest first) that satisfies ``predicate``, waiting for it."""
        return await self.wait_for(lambda: next((m for m in self.messages(channel) if predicate(m)), None), timeout)

    # -- what tests break ------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_pattern: str,
        status: int,
        count: int = 1,
        retry_after: float = 0.05,
        *,
        applied: bool = False,
    ) -> None:
        """Answer the next ``count`` requests matching ``method`` ("*" for any) and the glob
        ``path_pattern`` (API paths like ``/channels/*/messages``, or ``/attachments/*``) with
        ``status``: a 429 carries ``retry_after`` and the headers discord.py needs to retry it.
        Normally the failed request has no effect; ``applied=True`` lets it take effect first, as
        when Discord did the work but the answer was lost."""
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count!r}")
        self._faults.append(_Fault(method.upper(), path_pattern, status, count, retry_after, applied))

    def slow_next(self, method: str, path_pattern: str, seconds: float, count: int = 1) -> None:
        """Answer the next ``count`` requests matching ``method`` and ``path_pattern`` normally, but
        ``seconds`` late, as a slow network or a busy Discord would; the request takes effect then."""
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count!r}")
        self._faults.append(_Fault(method.upper(), path_pattern, 0, count, 0.0, True, delay=seconds))

    async def drop_gateway(self, *, resume: bool = True) -> None:
        """Close the bot's gateway socket (code 4000). discord.py reconnects and resumes, and every
        event dispatched meanwhile is replayed; with ``resume=False`` the session is invalidated so
        the bot has to identify again."""
        await self.gateway.drop(resume=resume)

    # -- HTTP plumbing ---------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        api = request.path.startswith(API_PREFIX + "/")
        record: RecordedRequest | None = None
        try:
            record = await self._record(request, request.path.removeprefix(API_PREFIX) if api else request.path)
            reply = await self._respond(record, api)
        except Exception as exc:
            # A bug in the fake. 400 rather than 5xx, which discord.py would retry for 25 seconds.
            log.exception("fake discord crashed on %s %s", request.method, request.path)
            self.server_errors.append(exc)
            reply = discord_error(400, 0, f"fake discord crashed: {exc!r}")
        if record is not None:
            record.status = reply.status
        return _render(reply)

    async def _record(self, request: web.Request, path: str) -> RecordedRequest:
        body: Any = None
        files: list[UploadedFile] = []
        if request.content_type == "application/json":
            raw = await request.read()
            body = json.loads(raw) if raw else None
        elif request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    continue
                if part.name == "payload_json":
                    body = json.loads(await part.text())
                else:
                    data = bytes(await part.read())
                    files.append(UploadedFile(part.name or "", part.filename or "", part.headers.get("Content-Type"), data))
        record = RecordedRequest(request.method, path, dict(request.query), body, files, dict(request.headers), self.now())
        self.requests.append(record)
        return record

    async def _respond(self, record: RecordedRequest, api: bool) -> Reply:
        fault = self._take_fault(record)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and not fault.applied:
            return _fault_reply(fault)
        reply = await self._dispatch(record) if api else self._serve_file(record)
        return reply if fault is None or not fault.status else _fault_reply(fault)

    def _take_fault(self, record: RecordedRequest) -> _Fault | None:
        fault = next((f for f in self._faults if f.matches(record.method, record.path)), None)
        if fault is not None:
            fault.remaining -= 1
            if fault.remaining == 0:
                self._faults.remove(fault)
        return fault


# -- helpers -------------------------------------------------------------------------------------------


def _render(reply: Reply) -> web.Response:
    """discord.py decodes JSON only when Content-Type is exactly ``application/json`` (aiohttp's
    ``json_response`` would add a charset), so responses are built by hand."""
    if reply.status == 204:
        return web.Response(status=204, headers=reply.headers)
    body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
    return web.Response(status=reply.status, body=body, headers={**reply.headers, "Content-Type": reply.content_type})


def _fault_reply(fault: _Fault) -> Reply:
    if fault.status != 429:
        return discord_error(fault.status, 0, f"{fault.status}: {HTTPStatus(fault.status).phrase}")
    # discord.py retries a 429 only when it carries Via (a 429 without it is Cloudflare's ban).
    headers = {
        "Via": "1.1 google",
        "Retry-After": str(max(1, round(fault.retry_after))),
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": f"{time.time() + fault.retry_after:.3f}",
        "X-RateLimit-Reset-After": f"{fault.retry_after:.3f}",
        "X-RateLimit-Bucket": "fake-bucket",
        "X-RateLimit-Scope": "user",
    }
    body = {"message": "You are being rate limited.", "retry_after": fault.retry_after, "global": False, "code": 0}
    return Reply(429, body, headers)
