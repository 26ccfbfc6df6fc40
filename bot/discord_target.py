"""Pointing discord.py at a Discord-compatible server (tests, self-hosted proxies).

discord.py reads its REST base from `Route.BASE` and its gateway from
`DiscordWebSocket.DEFAULT_GATEWAY`, both class attributes; a plain Bot never asks `/gateway/bot`.
"""

from __future__ import annotations

import discord.gateway
import discord.http
import yarl

__all__ = ["point_at"]


def point_at(api_base: str | None, gateway_url: str | None) -> None:
    """Use `api_base` (e.g. http://127.0.0.1:8080/api/v10) and `gateway_url`; None keeps Discord's."""
    if api_base:
        discord.http.Route.BASE = api_base.rstrip("/")
    if gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
