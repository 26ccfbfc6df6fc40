"""`/queue`, `/history` and `/help`: read-only answers about jobs and the bot, private to the caller.

Nothing here starts or changes a job. Every answer is ephemeral: it is about the caller's own work,
and posting it for the channel would only add noise to a shared workspace.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import store
from bot.jobs import GuildSettings, Job, JobState
from bot.runner import DEFAULT_JOB_SECONDS

if TYPE_CHECKING:
    from bot.client import RestyleBot
    from bot.store import Database

__all__ = ["HISTORY_LIMIT", "Info", "QueueEntry", "format_eta", "jump_url", "queue_entries"]

#: jobs `/history` lists, newest first
HISTORY_LIMIT = 10
#: passes of a lineage shown before the middle is elided (an embed holds 4,096 characters)
LINEAGE_LIMIT = 20
#: characters of a prompt shown in a one-line summary
PROMPT_PREVIEW = 40
#: Discord shows at most 25 autocomplete choices, each named in at most 100 characters
MAX_CHOICES, MAX_CHOICE_NAME = 25, 100

COLOUR = discord.Colour.blurple()

MODES_HELP = (
    "**redux**: variations of the source; the prompt joins its look. 1.0 = a free variation.\n"
    "**canny**: keeps the source's edges at every strength; strength sets how far colours and textures move.\n"
    "**depth**: keeps its 3-D layout (a depth map) at every strength; good for restyling scenes.\n"
    "**kontext**: a plain-language edit (*make her hair red*); strength says how far the edit may go.\n"
    "`fast` (redux only): FLUX.1-schnell in about 4 steps. `style` (canny/depth): take the look from another image."
)
STRENGTH_HELP = (
    "From 0 to 1 (default 0.5): how much of the source survives. Low keeps the source, high lets the prompt "
    "take over; most good results sit between 0.45 and 0.65. At strength *s* a job runs *s* × the mode's steps; "
    "at 0 the source comes back untouched."
)
BUTTONS_HELP = (
    "**0.3 / 0.5 / 0.7 / 0.9**: the same source, prompt and seed at that strength (anyone may press).\n"
    "**🎲 Re-roll**: the same job with a new seed.\n"
    "**Delete**: removes the result (its owner, or Manage Messages).\n"
    "**Cancel** (while queued or rendering): stops the job (its owner, or Manage Messages)."
)
TIPS_HELP = (
    "• Use a source of 512 px or more on its shorter side.\n"
    "• Even a short description makes results more consistent.\n"
    "• Redux above 0.8 barely keeps the composition: try depth or canny at a medium strength.\n"
    "• The same seed gives the same result; change only the strength to compare.\n"
    "• `/queue` shows where your jobs are; `/history` finds past results and how they were made."
)
#: Discord's names for the permissions a command may require (the API names differ)
PERMISSION_NAMES = {"manage_guild": "Manage Server", "manage_messages": "Manage Messages"}


# --- what the answers say --------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueEntry:
    """One of the caller's waiting jobs: its place in the guild's queue and the seconds until it is done."""

    job: Job
    position: int
    eta_seconds: float


def queue_entries(db: Database, guild_id: int | None, owner_id: int) -> tuple[list[QueueEntry], int]:
    """The owner's queued and running jobs in the guild's queue, and that queue's length.

    Blocking: run it in a thread. The ETA is the position times the mean render time of the job's
    mode (`DEFAULT_JOB_SECONDS` while that mode has no history), as the status message estimates it.
    """
    queue = store.queued_jobs(db, guild_id)
    means: dict[str, float] = {}
    entries = []
    for position, job in enumerate(queue, start=1):
        if job.owner_id != owner_id:
            continue
        if job.mode not in means:
            means[job.mode] = store.mean_render_seconds(db, job.mode) or DEFAULT_JOB_SECONDS
        entries.append(QueueEntry(job, position, position * means[job.mode]))
    return entries, len(queue)


def format_eta(seconds: float) -> str:
    return f"about {seconds:.0f} s" if seconds < 90 else f"about {seconds / 60:.0f} min"


def jump_url(guild_id: int | None, channel_id: int, message_id: int) -> str:
    """A link that opens the message in Discord (`@me` stands for the guild in DMs)."""
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


def _result_link(job: Job) -> str:
    if job.result_message_id is None:
        return "no result yet" if not job.terminal else "no result"
    if job.ephemeral:  # ephemeral messages have no link that works for anyone, their owner included
        return "private result"
    return f"[result]({jump_url(job.guild_id, job.channel_id, job.result_message_id)})"


def _preview(prompt: str) -> str:
    text = " ".join(prompt.split())
    if len(text) > PROMPT_PREVIEW:
        text = text[: PROMPT_PREVIEW - 1] + "…"
    return f"“{discord.utils.escape_markdown(text)}”" if text else "*no prompt*"


def _mode(job: Job) -> str:
    return f"{job.mode}{' (fast)' if job.fast else ''}"


def queue_line(entry: QueueEntry) -> str:
    job = entry.job
    where = "rendering now" if job.state is JobState.RUNNING else f"#{entry.position} in the queue"
    return f"`{job.id}` · {_mode(job)} · {job.strength:g} · {where} · done in {format_eta(entry.eta_seconds)}"


def history_line(job: Job) -> str:
    when = f"<t:{int(job.created_at)}:R>"
    parts = [f"`{job.id}`", when, _mode(job), f"{job.strength:g}", job.state.value, _result_link(job), _preview(job.prompt)]
    return " · ".join(parts)


def lineage_lines(chain: list[Job]) -> list[str]:
    """One line per pass, root first; a long chain keeps its root and latest passes."""
    shown = list(enumerate(chain, start=1))
    hidden = max(0, len(shown) - LINEAGE_LIMIT)
    if hidden:
        shown = [shown[0], *shown[hidden + 1 :]]
    lines = []
    for index, job in shown:
        kind = job.kind.replace("_", " ")
        lines.append(
            f"{index}. `{job.id}` · {kind} · {_mode(job)} · strength {job.strength:g} · by <@{job.owner_id}> · "
            f"{_result_link(job)}"
        )
        if index == 1 and hidden:
            lines.append(f"… {hidden} more pass{'es' if hidden != 1 else ''} …")
    return lines


def _visible(job: Job, interaction: discord.Interaction) -> bool:
    # Ids leak between servers through screenshots; a job from elsewhere is shown only to its owner.
    return job.owner_id == interaction.user.id or (job.guild_id is not None and job.guild_id == interaction.guild_id)


def command_lines(tree: app_commands.CommandTree, guild_id: int | None) -> list[str]:
    """Every registered slash command and context menu, so `/help` never falls behind the code."""
    scopes = [discord.Object(guild_id), None] if guild_id is not None else [None]
    lines: list[str] = []
    seen: set[str] = set()
    for scope in scopes:
        for command in tree.walk_commands(guild=scope):
            if isinstance(command, app_commands.Group) or command.qualified_name in seen:
                continue
            seen.add(command.qualified_name)
            lines.append(f"`/{command.qualified_name}`: {command.description}{_requirement(command)}")
        for kind, target in ((discord.AppCommandType.message, "message"), (discord.AppCommandType.user, "member")):
            for menu in tree.get_commands(guild=scope, type=kind):
                if f"menu:{menu.name}" not in seen:
                    seen.add(f"menu:{menu.name}")
                    lines.append(f"**{menu.name}**: right-click a {target} → Apps{_requirement(menu)}")
    return lines


def _requirement(command: app_commands.Command | app_commands.ContextMenu) -> str:
    permissions = command.default_permissions
    if permissions is None or permissions.value == 0:
        return ""
    names = [PERMISSION_NAMES.get(name, name.replace("_", " ").title()) for name, granted in permissions if granted]
    return f" (needs {', '.join(names)})"


def help_embed(commands_text: list[str], settings: GuildSettings | None = None) -> discord.Embed:
    embed = discord.Embed(
        title="Restyle",
        description="Image-to-image with FLUX.1: give `/restyle` a photo and a prompt, then iterate with the buttons.",
        colour=COLOUR,
    )
    embed.add_field(name="Commands", value=_fit("\n".join(commands_text) or "none registered"), inline=False)
    embed.add_field(name="Modes", value=MODES_HELP, inline=False)
    embed.add_field(name="Strength", value=STRENGTH_HELP, inline=False)
    embed.add_field(name="Buttons under a result", value=BUTTONS_HELP, inline=False)
    embed.add_field(name="Tips", value=TIPS_HELP, inline=False)
    if settings is not None:  # an admin may have changed the defaults the text above describes
        channels = ", ".join(f"<#{c}>" for c in settings.allowed_channels) or "every channel"
        embed.add_field(
            name="In this server",
            value=_fit(
                f"Defaults: {settings.default_mode}, strength {settings.default_strength:g}. "
                f"Up to {settings.per_user_limit} jobs each at once. Works in {channels}."
            ),
            inline=False,
        )
    return embed


def _fit(text: str, limit: int = 1024) -> str:
    # An embed field holds 1,024 characters; a cut list beats a rejected answer.
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- the commands ----------------------------------------------------------------------------------


class Info(commands.Cog):
    """`/queue`, `/history` and `/help`."""

    def __init__(self, bot: RestyleBot) -> None:
        self.bot = bot

    @app_commands.command(name="queue", description="Your jobs waiting or rendering, with their place and an ETA")
    async def queue(self, interaction: discord.Interaction) -> None:
        entries, length = await asyncio.to_thread(queue_entries, self.bot.db, interaction.guild_id, interaction.user.id)
        if not entries:
            await interaction.response.send_message("You have no jobs waiting.", ephemeral=True)
            return
        embed = discord.Embed(title="Your queued jobs", description="\n".join(map(queue_line, entries)), colour=COLOUR)
        embed.set_footer(text=f"{length} job{'s' if length != 1 else ''} in the queue here")
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="history", description="Your recent jobs here, or how one job was made")
    @app_commands.describe(job="a job id (in a result's footer): shows every pass that led to it")
    async def history(self, interaction: discord.Interaction, job: str | None = None) -> None:
        if job is None:
            await self._recent(interaction)
        else:
            await self._lineage(interaction, job.strip())

    async def _recent(self, interaction: discord.Interaction) -> None:
        jobs = await asyncio.to_thread(
            store.recent_jobs, self.bot.db, owner_id=interaction.user.id, guild_id=interaction.guild_id, limit=HISTORY_LIMIT
        )
        if not jobs:
            await interaction.response.send_message("You have no jobs here yet: start one with `/restyle`.", ephemeral=True)
            return
        embed = discord.Embed(title="Your recent jobs", description="\n".join(map(history_line, jobs)), colour=COLOUR)
        embed.set_footer(text="/history job:<id> shows how a job was made")
        await interaction.response.send_message(embed=embed, ephemeral=True)

    async def _lineage(self, interaction: discord.Interaction, job_id: str) -> None:
        found = await asyncio.to_thread(store.find_job, self.bot.db, job_id)
        if found is None or not _visible(found, interaction):
            shown = discord.utils.escape_markdown(job_id[:40])
            await interaction.response.send_message(
                f"There is no job `{shown}` here. Job ids are in the footer of each result.", ephemeral=True
            )
            return
        chain = await asyncio.to_thread(store.lineage, self.bot.db, found.id)
        root = chain[0]
        embed = discord.Embed(
            title=f"How job {found.id} was made",
            description="\n".join(lineage_lines(chain)),
            colour=COLOUR,
        )
        embed.add_field(name="Prompt", value=_fit(discord.utils.escape_markdown(found.prompt) or "*none*"), inline=False)
        embed.set_footer(text=f"{len(chain)} pass{'es' if len(chain) != 1 else ''}, from job {root.id}")
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @history.autocomplete("job")
    async def history_job_ids(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """The caller's recent job ids, matched against what was typed (the id or words of the prompt)."""
        jobs = await asyncio.to_thread(
            store.recent_jobs, self.bot.db, owner_id=interaction.user.id, guild_id=interaction.guild_id, limit=MAX_CHOICES
        )
        typed = current.strip().lower()
        matches = [job for job in jobs if typed in job.id.lower() or typed in job.prompt.lower()]
        return [app_commands.Choice(name=_choice_name(job), value=job.id) for job in matches[:MAX_CHOICES]]

    @app_commands.command(name="help", description="What Restyle does: commands, modes, strength, buttons and tips")
    async def help(self, interaction: discord.Interaction) -> None:
        settings = None
        if interaction.guild_id is not None:
            settings = await self.bot.guild_settings(interaction.guild_id)
        embed = help_embed(command_lines(self.bot.tree, interaction.guild_id), settings)
        await interaction.response.send_message(embed=embed, ephemeral=True)


def _choice_name(job: Job) -> str:
    name = f"{job.id} · {_mode(job)} {job.strength:g} · {' '.join(job.prompt.split()) or 'no prompt'}"
    return name if len(name) <= MAX_CHOICE_NAME else name[: MAX_CHOICE_NAME - 1] + "…"


async def setup(bot: RestyleBot) -> None:
    await bot.add_cog(Info(bot))
