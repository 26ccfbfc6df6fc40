"""Acknowledgements before everything else: the work that follows one waits for the others.

Discord gives an interaction 3 seconds to be acknowledged, and a burst of commands (a team's
channel after an announcement, or 200 at once in bench/ack.py) arrives on one event loop. Left to
the loop's round robin, each command's download, checks and storage run between the next ones'
acknowledgements and push them late. So the bot notes every interaction as it arrives, and work
after an acknowledgement first waits, for at most ``max_wait`` seconds, until no interaction is
still waiting for its own. The engine is held between denoising steps meanwhile (``on_busy`` and
``on_quiet``), since its worker thread needs the same GIL as the loop:

>>> acks = AckFirst()
>>> acks.arrived(interaction)            # RestyleBot.dispatch, as the gateway event is parsed
>>> await interaction.response.defer()
>>> await acks.settled(interaction)      # this one is answered; now the others have been too
>>> source = await download(...)

An interaction is forgotten when its own handler reaches ``settled``, or, for handlers that never
do (a /help reply), once its response ``is_done()``, which discord.py sets after Discord accepted
the callback, or after Discord's 3 seconds: nothing can keep the others waiting past ``max_wait``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import discord

__all__ = ["AckFirst"]

# Discord forgets an unanswered interaction after 3 seconds: waiting for it after that is useless.
_ACK_DEADLINE = 3.0
# How often answered interactions that nobody reports (a /help reply) are looked for.
_RECHECK = 0.01


class AckFirst:
    """Interactions not acknowledged yet, and a bounded wait until there are none."""

    def __init__(
        self,
        *,
        max_wait: float = 1.0,
        linger: float = 0.25,
        on_busy: Callable[[], None] | None = None,
        on_quiet: Callable[[], None] | None = None,
    ) -> None:
        """``on_busy`` is called when an interaction arrives with none waiting, ``on_quiet`` when
        the last one waiting is acknowledged and, after a burst (more than one arrival), ``linger``
        seconds passed without a new one: a busy loop reads the gateway in batches, so the first
        commands of a burst are answered while the rest are still unread, and their downloads must
        not start in that gap. A lone command settles at once. The bot holds and releases the
        engine with these."""
        self.max_wait = max_wait
        self.linger = linger
        self._on_busy = on_busy
        self._on_quiet = on_quiet
        self._waiting: dict[int, tuple[discord.Interaction, float]] = {}
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._pruner: asyncio.Task[None] | None = None
        self._last_arrival = 0.0
        self._arrivals = 0  # since the last quiet moment
        self._quiet_timer: asyncio.TimerHandle | None = None

    def arrived(self, interaction: discord.Interaction) -> None:
        """Note an interaction that Discord expects an acknowledgement for."""
        self._last_arrival = time.monotonic()
        self._arrivals += 1
        self._waiting[interaction.id] = (interaction, self._last_arrival)
        if self._quiet.is_set():
            self._quiet.clear()
            self._prune_soon()
            if self._on_busy is not None:
                self._on_busy()

    def waiting(self) -> int:
        """How many interactions still wait for their acknowledgement."""
        return len(self._waiting)

    async def settled(self, interaction: discord.Interaction) -> None:
        """Note that ``interaction`` is acknowledged, then return once no other interaction waits
        for its acknowledgement, or after ``max_wait`` seconds."""
        self._forget(interaction.id)
        if self._quiet.is_set():
            return
        try:
            async with asyncio.timeout(self.max_wait):
                await self._quiet.wait()
        except TimeoutError:
            pass

    def close(self) -> None:
        """Stop the background pruning and wake every waiter, for shutdown."""
        if self._pruner is not None:
            self._pruner.cancel()
        if self._quiet_timer is not None:
            self._quiet_timer.cancel()
            self._quiet_timer = None
        self._waiting.clear()
        if not self._quiet.is_set():
            self._quiet.set()
            if self._on_quiet is not None:
                self._on_quiet()

    def _forget(self, key: int) -> None:
        if self._waiting.pop(key, None) is not None and not self._waiting:
            self._quiet_when_idle()

    def _quiet_when_idle(self) -> None:
        """Become quiet once nothing waits and nothing arrived for ``linger`` seconds."""
        if self._waiting or self._quiet.is_set() or self._quiet_timer is not None:
            return
        idle_in = self._last_arrival + self.linger - time.monotonic()
        if idle_in > 0 and self._arrivals > 1:
            self._quiet_timer = asyncio.get_running_loop().call_later(idle_in, self._look_again)
            return
        self._quiet.set()
        self._arrivals = 0
        if self._on_quiet is not None:
            self._on_quiet()

    def _look_again(self) -> None:
        self._quiet_timer = None
        self._quiet_when_idle()

    def _prune_soon(self) -> None:
        # Started with the first interaction of a burst: answered ones nobody reports are forgotten
        # even when no handler waits in settled().
        if self._pruner is None or self._pruner.done():
            self._pruner = asyncio.create_task(self._prune_while_waiting(), name="ack-first-prune")

    async def _prune_while_waiting(self) -> None:
        """Forget the interactions answered by handlers that never reach ``settled``, or given up
        by Discord. One task does it for every waiter, so a burst's waiters cost nothing meanwhile."""
        while not self._quiet.is_set():
            await asyncio.sleep(_RECHECK)
            now = time.monotonic()
            for key, (interaction, since) in list(self._waiting.items()):
                if interaction.response.is_done() or now - since > _ACK_DEADLINE:
                    self._forget(key)
