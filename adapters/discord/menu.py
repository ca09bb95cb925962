"""The "Save thread to Lorekeeper" menu on Discord: where to save the thread, picked from an
ephemeral select menu.

The message command answers its user alone with one select of core's
:class:`~core.types.SaveChoices` (the place's default first, described as such); picking one
saves the thread there. The menu is a discord.py view held by this process for
:data:`TIMEOUT` seconds (after a restart, use the command again). Only the person who opened
it may pick, and core decides again whether they may save where they picked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import discord

from core.types import SaveChoices

MAX_OPTIONS = 25  # a select menu's options
LABEL_CHARS = 100
TIMEOUT = 600.0  # seconds; an interaction's token lasts 15 minutes
PROMPT = "Where should I save this thread?"
DEFAULT = "Where this place's files go"
NOT_YOURS = "Only the person who opened this menu can use it."

Pick = Callable[[discord.Interaction[Any], str], Awaitable[None]]


class SaveMenu(discord.ui.View):
    """One select of where to save; the first pick by its owner calls ``on_pick`` with the
    chosen value and ends the menu."""

    def __init__(self, choices: SaveChoices, *, user_id: int, on_pick: Pick) -> None:
        super().__init__(timeout=TIMEOUT)
        self._user_id = user_id
        self._on_pick = on_pick
        self._select: discord.ui.Select[SaveMenu] = discord.ui.Select(
            placeholder="Save into…",
            options=[
                discord.SelectOption(
                    label=c.label[:LABEL_CHARS],
                    value=c.value,
                    description=DEFAULT if c.value == choices.chosen else None,
                )
                for c in choices.choices[:MAX_OPTIONS]
            ],
        )
        self._select.callback = self._picked  # type: ignore[method-assign]
        self.add_item(self._select)

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if interaction.user.id == self._user_id:
            return True
        await interaction.response.send_message(NOT_YOURS, ephemeral=True)
        return False

    async def _picked(self, interaction: discord.Interaction[Any]) -> None:
        self.stop()
        await self._on_pick(interaction, self._select.values[0])
