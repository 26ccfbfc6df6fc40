"""The modals that start a job from an image already on Discord: prompt, mode and strength, pre-filled.

Declarative, as in discord.py's examples/modals/basic.py: the fields are class attributes, `on_submit`
does the work, `on_error` answers privately and logs. Subclasses only say what the new job starts
from (`ask`). A modal submission cannot open another modal, so every bad value is answered with a
private message, and the user opens the modal again.

Custom ids end with the user's id: discord.py finds a submitted modal by custom_id alone, so two
people remixing the same job at once must not share one.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict, cast

import discord
from discord import ui

from bot.jobs import GUILD_MODES, Job
from cogs.intake_flow import Ask, intake_and_submit, refuse_after_defer, sentence
from engine.errors import InputError
from engine.render import MAX_PROMPT_CHARS

if TYPE_CHECKING:
    from bot.client import RestyleBot

__all__ = [
    "Carried",
    "ContextRestyleModal",
    "JobModal",
    "RemixModal",
    "UseAsInputModal",
    "carried",
    "show_modal",
    "submitted_inputs",
]

log = logging.getLogger(__name__)

#: seconds a shown modal is kept waiting for its submission (then discord.py forgets it)
MODAL_TIMEOUT = 15 * 60

#: what each mode keeps, shown under its name in the mode menu
MODE_HINTS = {
    "redux": "variations of the whole image",
    "canny": "keeps the edges",
    "depth": "keeps the 3-D structure",
    "kontext": "follows an instruction in the prompt",
    "fill": "repaints the same mask or new borders",
}


class JobModal(ui.Modal):
    """Prompt, mode and strength for a new job; a subclass gives the title and says what it starts from.

    :param custom_id: unique per user and target, up to 100 characters
    :param prompt: the prompt shown pre-filled
    :param mode: the mode selected at first; it must be one of `modes`
    :param strength: the strength shown pre-filled
    :param modes: the modes offered
    """

    prompt = ui.Label(
        text="Prompt",
        description="what to make of the image; for kontext, the instruction",
        component=ui.TextInput(
            custom_id="prompt", style=discord.TextStyle.paragraph, required=False, max_length=MAX_PROMPT_CHARS
        ),
    )
    mode = ui.Label(text="Mode", component=ui.Select(custom_id="mode", min_values=1, max_values=1))
    strength = ui.Label(
        text="Strength",
        description="0 keeps the source, 1 lets the prompt take over",
        component=ui.TextInput(custom_id="strength", placeholder="0.5", max_length=10),
    )

    def __init__(
        self, *, custom_id: str, prompt: str, mode: str, strength: float, modes: tuple[str, ...] = GUILD_MODES
    ) -> None:
        if mode not in modes:
            raise ValueError(f"mode must be one of {modes!r}, got {mode!r}")
        super().__init__(custom_id=custom_id, timeout=MODAL_TIMEOUT)
        self.modes = modes
        self.default_mode = mode
        self._text(self.prompt).default = prompt or None  # no empty pre-fill: Discord wants 1 character or none
        self._text(self.strength).default = f"{strength:g}"
        self._select().options = [
            discord.SelectOption(label=m, value=m, description=MODE_HINTS.get(m), default=m == mode) for m in modes
        ]

    @staticmethod
    def _text(label: ui.Label) -> ui.TextInput:
        return cast(ui.TextInput, label.component)

    def _select(self) -> ui.Select:
        return cast(ui.Select, self.mode.component)

    def submitted(self) -> tuple[str, str, float]:
        """The prompt, mode and strength as submitted; InputError naming the first bad one."""
        return self.parse(self._text(self.prompt).value, self._select().values, self._text(self.strength).value)

    def parse(self, prompt: str, chosen: list[str], text: str) -> tuple[str, str, float]:
        """The prompt, mode and strength from the raw inputs (the prompt, the modes chosen, the
        strength as typed); InputError naming the first bad one."""
        if len(prompt) > MAX_PROMPT_CHARS:  # Discord's client enforces max_length; a crafted request may not
            raise InputError(f"the prompt is {len(prompt)} characters, over the {MAX_PROMPT_CHARS} limit")
        mode = chosen[0] if chosen else self.default_mode  # nothing chosen: the pre-selected one
        if mode not in self.modes:
            raise InputError(f"unknown mode {mode!r}: choose one of {', '.join(self.modes)}")
        text = text.strip().replace(",", ".")  # "0,6" in many locales
        try:
            strength = float(text)
        except ValueError:
            raise InputError(f"strength must be a number between 0 and 1, got {text!r}") from None
        if not math.isfinite(strength) or not 0.0 <= strength <= 1.0:
            raise InputError(f"strength must be between 0 and 1, got {text}")
        return prompt, mode, strength

    def ask(self, prompt: str, mode: str, strength: float) -> Ask:
        """What the new job starts from, with the submitted values."""
        raise NotImplementedError

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self.submit(interaction, self.submitted)

    async def submit(self, interaction: discord.Interaction, values: Callable[[], tuple[str, str, float]]) -> None:
        """Start the job from the submitted ``values()``, or say privately what is wrong with them."""
        try:
            prompt, mode, strength = values()
        except InputError as exc:
            await interaction.response.send_message(sentence(str(exc)), ephemeral=True)
            return
        bot = cast("RestyleBot", interaction.client)
        await intake_and_submit(bot, interaction, self.ask(prompt, mode, strength))

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:
        log.error("modal %s failed for user %s", self.custom_id, interaction.user.id, exc_info=error)
        text = "sorry, something went wrong on our side; please try again"
        try:
            if interaction.response.is_done():
                # ends a "thinking…" response; a result the modal was opened from is never removed
                await refuse_after_defer(interaction, text, keep_original=interaction.message is not None)
            else:
                await interaction.response.send_message(sentence(text), ephemeral=True)
        except discord.HTTPException:
            log.info("could not tell user %s that modal %s failed", interaction.user.id, self.custom_id)


async def show_modal(interaction: discord.Interaction, modal: JobModal) -> None:
    """Show ``modal`` and note it as open in this process (``RestyleBot.shown_modals``): a
    submission the bot has no note of was shown before a restart, and cogs/late_modals.py takes it."""
    await interaction.response.send_modal(modal)
    bot = cast("RestyleBot", interaction.client)
    now = time.monotonic()
    for custom_id in [c for c, until in bot.shown_modals.items() if until < now]:
        del bot.shown_modals[custom_id]
    bot.shown_modals[modal.custom_id] = now + MODAL_TIMEOUT


def submitted_inputs(data: dict[str, Any]) -> dict[str, Any]:
    """A modal submission's inputs from its raw ``data``: custom_id -> the text typed, or the list
    of options chosen; labels and action rows are looked through."""
    found: dict[str, Any] = {}
    pending = list(data.get("components") or [])
    while pending:
        component = pending.pop()
        pending.extend(component.get("components") or [])
        if "component" in component:
            pending.append(component["component"])
        if "custom_id" in component:
            found[component["custom_id"]] = component.get("values", component.get("value"))
    return found


class Carried(TypedDict):
    """A parent's extras that a new job keeps (`Ask` fields)."""

    fast: bool
    style: str | None
    mask: str | None
    outpaint: str | None


def carried(parent: Job, mode: str, *, same_source: bool) -> Carried:
    """What a new job keeps of its parent's extras: each only where `mode` takes it.

    The mask and the outpaint padding belong to the parent's source, so they are kept only when
    the new job starts from that same source, in the fill mode.
    """
    fill = same_source and mode == "fill"
    return Carried(
        fast=parent.fast and mode == "redux",
        style=parent.style_hash if mode in ("canny", "depth") else None,
        mask=parent.mask_hash if fill else None,
        outpaint=parent.outpaint if fill else None,
    )


class ContextRestyleModal(JobModal, title="Restyle image"):
    """ "Restyle image" on a message: the message's image is the source; a Restyle result is the parent."""

    def __init__(
        self,
        attachment: discord.Attachment,
        target: discord.Message,
        user_id: int,
        parent: Job | None,
        *,
        prompt: str,
        mode: str,
        strength: float,
    ) -> None:
        super().__init__(custom_id=f"msg:{target.id}:restyle:{user_id}", prompt=prompt, mode=mode, strength=strength)
        self.attachment = attachment
        self.target_id = target.id
        self.parent_id = parent.id if parent else None

    def ask(self, prompt: str, mode: str, strength: float) -> Ask:
        return Ask(
            kind="context",
            image=self.attachment,
            prompt=prompt,
            mode=mode,
            strength=strength,
            parent_id=self.parent_id,
            reply_to_message_id=self.target_id,
        )


class RemixModal(JobModal, title="Remix"):
    """Remix: the parent's SOURCE again, with the prompt, mode or strength changed; the seed is kept, so
    the change shows what the edits did."""

    def __init__(self, parent: Job, user_id: int) -> None:
        # fill is offered only to a fill job: its mask or padding come along
        modes = (*GUILD_MODES, "fill") if parent.mode == "fill" else GUILD_MODES
        super().__init__(
            custom_id=f"job:{parent.id}:remix:{user_id}",
            prompt=parent.prompt,
            mode=parent.mode,
            strength=parent.strength,
            modes=modes,
        )
        self.parent = parent

    def ask(self, prompt: str, mode: str, strength: float) -> Ask:
        parent = self.parent
        seed = parent.result_seed if parent.result_seed is not None else parent.seed
        extras = carried(parent, mode, same_source=True)
        return Ask(
            kind="remix",
            image=parent.source_hash,
            prompt=prompt,
            mode=mode,
            strength=strength,
            seed=seed,
            parent_id=parent.id,
            **extras,
        )


class UseAsInputModal(JobModal, title="Use as input"):
    """Use as input: the next pass starts from the parent's RESULT, with a new seed."""

    def __init__(self, parent: Job, user_id: int, default_mode: str) -> None:
        # a fill job's mask or padding belong to its source, not its result: offer the other modes
        super().__init__(
            custom_id=f"job:{parent.id}:use:{user_id}",
            prompt=parent.prompt,
            mode=parent.mode if parent.mode in GUILD_MODES else default_mode,
            strength=parent.strength,
        )
        self.parent = parent

    def ask(self, prompt: str, mode: str, strength: float) -> Ask:
        parent = self.parent
        assert parent.result_hash is not None  # the button checks it before opening the modal
        extras = carried(parent, mode, same_source=False)
        return Ask(
            kind="use_as_input",
            image=parent.result_hash,
            prompt=prompt,
            mode=mode,
            strength=strength,
            parent_id=parent.id,
            **extras,
        )
