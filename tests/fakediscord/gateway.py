"""The fake's gateway: one websocket session that survives dropped sockets, as Discord's does.

Flow: HELLO (op 10) on connect; IDENTIFY (op 2) starts a session with READY (guilds unavailable) and a
GUILD_CREATE per guild; RESUME (op 6) replays the dispatches after the client's sequence number,
then RESUMED; a RESUME for an unknown session gets INVALID_SESSION (op 9, not resumable).
HEARTBEAT (op 1) gets HEARTBEAT_ACK (op 11); REQUEST_GUILD_MEMBERS (op 8) one GUILD_MEMBERS_CHUNK.

Every dispatch gets the next sequence number and goes into the session's log, sent at once when a
socket is live and replayed on RESUME otherwise, so events raised while the bot is away still arrive.
Frames are JSON. When the client asks for ``compress=zlib-stream`` in the URL (discord.py does),
they go as Discord sends them: one zlib stream per connection, each message a binary frame ending in
a Z_SYNC_FLUSH. That matters under load, not only for fidelity: 200 uncompressed interactions (about
500 KB) fill aiohttp's 64 KB websocket queue, the client stops reading, its TCP window closes, and
the next window update waits for the 200 ms persist timer; compressed, they are a tenth of that.
Otherwise the frames are plain JSON text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

__all__ = ["GatewaySession", "GatewayStats"]

log = logging.getLogger(__name__)

DISPATCH, HEARTBEAT, IDENTIFY, RESUME, REQUEST_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 0, 1, 2, 6, 8, 9, 10, 11
#: A close code after which Discord clients resume (4000: unknown error).
CLOSE_RESUMABLE = 4000
CLOSE_AUTH_FAILED = 4004


@dataclass
class GatewayStats:
    """Counts of what happened on the gateway, plus every payload the bot sent (op and data).
    ``replayed`` counts dispatches sent again on RESUME because the bot had missed them."""

    connections: int = 0
    identifies: int = 0
    resumes: int = 0
    replayed: int = 0
    heartbeats: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)


class GatewaySession:
    """Serves ``/gateway`` websockets for one bot token.

    :param token: the bot token IDENTIFY and RESUME must carry.
    :param ready: builds the READY payload for a new session id.
    :param guilds: builds the GUILD_CREATE payloads, one per guild.
    :param resume_url: ``resume_gateway_url`` in READY, where discord.py reconnects to resume.
    :param heartbeat_interval: seconds, sent in HELLO.
    """

    def __init__(
        self,
        *,
        token: str,
        ready: Callable[[str], dict[str, Any]],
        guilds: Callable[[], list[dict[str, Any]]],
        resume_url: str,
        heartbeat_interval: float,
    ) -> None:
        self._token = token
        self._ready = ready
        self._guilds = guilds
        self.resume_url = resume_url
        self._heartbeat_interval = heartbeat_interval
        self.session_id: str | None = None
        self.intents = 0
        self.stats = GatewayStats()
        self._seq = 0
        self._log: list[dict[str, Any]] = []
        self._live: web.WebSocketResponse | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._compressors: dict[web.WebSocketResponse, Any] = {}  # zlib-stream sockets
        # Dispatches, IDENTIFY and RESUME take turns so sequence numbers go out in order.
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        """True while a socket has a READY or RESUMED session."""
        return self._live is not None

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        # No permessage-deflate (Discord offers none): aiohttp may compress a large frame in a thread,
        # which would let a later frame overtake it and break the zlib stream.
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        self._sockets.add(ws)
        if request.query.get("compress") == "zlib-stream":
            self._compressors[ws] = zlib.compressobj()
        self.stats.connections += 1
        try:
            await self._send(ws, {"op": HELLO, "d": {"heartbeat_interval": int(self._heartbeat_interval * 1000)}})
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await self._on_payload(ws, json.loads(message.data))
        finally:
            self._sockets.discard(ws)
            self._compressors.pop(ws, None)
            async with self._lock:
                if self._live is ws:
                    self._live = None
        return ws

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send an event now, or keep it for the next RESUME when the bot is away."""
        async with self._lock:
            await self._dispatch_locked(event, data)

    async def drop(self, *, resume: bool = True) -> None:
        """Close the bot's socket with 4000; with ``resume=False`` the session is forgotten too, so the
        bot's RESUME is refused (op 9) and it has to IDENTIFY again."""
        async with self._lock:
            ws, self._live = self._live, None
            if not resume:
                self.session_id = None
        if ws is not None:
            await ws.close(code=CLOSE_RESUMABLE, message=b"dropped by test")

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"fake discord stopping")

    # -- what the bot sends ----------------------------------------------------------------------------

    async def _on_payload(self, ws: web.WebSocketResponse, payload: dict[str, Any]) -> None:
        op, data = payload.get("op"), payload.get("d")
        self.stats.received.append({"op": op, "d": data})
        if op == HEARTBEAT:
            self.stats.heartbeats += 1
            await self._send(ws, {"op": HEARTBEAT_ACK})
        elif op == IDENTIFY:
            await self._identify(ws, data)
        elif op == RESUME:
            await self._resume(ws, data)
        elif op == REQUEST_MEMBERS:
            await self._send_members(data)
        # Presence (3) and voice (4) updates change nothing here.

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        if data.get("token") != self._token:
            await ws.close(code=CLOSE_AUTH_FAILED, message=b"Authentication failed.")
            return
        async with self._lock:
            self.stats.identifies += 1
            self.session_id = secrets.token_hex(16)
            self.intents = int(data.get("intents", 0))
            self._seq, self._log = 0, []
            self._live = ws
            await self._dispatch_locked("READY", self._ready(self.session_id))
            for guild in self._guilds():
                await self._dispatch_locked("GUILD_CREATE", guild)

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        async with self._lock:
            known = data.get("token") == self._token and data.get("session_id") == self.session_id
            if not known or self.session_id is None:
                await self._send(ws, {"op": INVALID_SESSION, "d": False})
                return
            self.stats.resumes += 1
            seen = data.get("seq") or 0
            for frame in self._log:
                if frame["s"] > seen:
                    self.stats.replayed += 1
                    await self._send(ws, frame)
            self._live = ws
            await self._dispatch_locked("RESUMED", {})

    async def _send_members(self, data: dict[str, Any]) -> None:
        guild_id = str(data.get("guild_id"))
        guild = next((g for g in self._guilds() if g["id"] == guild_id), None)
        chunk = {
            "guild_id": guild_id,
            "members": guild["members"] if guild else [],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await self.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    # -- what the fake sends ---------------------------------------------------------------------------

    async def _dispatch_locked(self, event: str, data: dict[str, Any]) -> None:
        self._seq += 1
        frame = {"op": DISPATCH, "t": event, "s": self._seq, "d": data}
        self._log.append(frame)
        if self._live is not None and not await self._send(self._live, frame):
            self._live = None  # the socket died under us: the frame waits in the log for RESUME

    async def _send(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> bool:
        if ws.closed:
            return False
        try:
            text = json.dumps(frame)
            compressor = self._compressors.get(ws)
            if compressor is None:
                await ws.send_str(text)
            else:
                await ws.send_bytes(compressor.compress(text.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH))
        except ConnectionError:
            log.debug("gateway socket closed while sending %s", frame.get("t") or frame.get("op"))
            return False
        return True
