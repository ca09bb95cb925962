"""The `/lore` application command tree, generated from core's command registry.

Each registry command becomes a subcommand (of ``/lore``, or of its group: ``/lore namespace
bind``) whose options are the command's typed parameters, with their choices and limits.
Every callback hands the interaction to one runner, which reads the typed options straight
into core's arguments (:func:`adapters.discord.events.command_request`).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import Choice

from core.commands import REGISTRY, Command, Kind, Param, Registry

log = logging.getLogger(__name__)

Runner = Callable[[discord.Interaction], Awaitable[None]]
DESCRIPTION = "Ask Lorekeeper and manage its knowledge"
_TYPES: dict[Kind, Any] = {
    Kind.TEXT: str,
    Kind.NAMESPACE: str,
    Kind.DOCUMENT: str,
    Kind.CHOICE: str,
    Kind.CHANNEL: discord.TextChannel,
    Kind.FLAG: bool,
    Kind.USER: discord.User,
    Kind.PHRASES: str,
}


def option_type(param: Param) -> Any:
    """The annotation discord.py turns into the option's type (and its limits)."""
    if param.kind is Kind.INTEGER:
        if param.minimum is None and param.maximum is None:
            return int
        return app_commands.Range[int, param.minimum, param.maximum]
    return _TYPES[param.kind]


def _callback(command: Command, run: Runner) -> Callable[..., Coroutine[Any, Any, None]]:
    """A callback whose signature is the command's options; the values are read again from
    the interaction by the runner, so the callback only hands it over."""

    async def callback(interaction: discord.Interaction, **_: Any) -> None:
        await run(interaction)

    first = inspect.Parameter(
        "interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction
    )
    options = [
        inspect.Parameter(
            p.name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=option_type(p),
            default=inspect.Parameter.empty if p.required else None,
        )
        for p in command.params
    ]
    callback.__signature__ = inspect.Signature([first, *options])  # type: ignore[attr-defined]
    described = app_commands.describe(**{p.name: p.help[:100] for p in command.params})
    chosen = {
        p.name: [Choice(name=c, value=c) for c in p.choices[:25]]
        for p in command.params
        if p.choices and p.kind is Kind.CHOICE
    }
    decorated = described(callback)
    return app_commands.choices(**chosen)(decorated) if chosen else decorated


def subcommand(command: Command, run: Runner) -> app_commands.Command[Any, ..., None]:
    """One registry command as a discord.py command (``extras["lore"]`` is the definition)."""
    return app_commands.Command(
        name=command.path[-1],
        description=command.description,
        callback=_callback(command, run),
        extras={"lore": command},
    )


class LoreGroup(app_commands.Group):
    """`/lore`: every command of the registry, grouped as its paths say."""

    def __init__(self, run: Runner, registry: Registry = REGISTRY) -> None:
        super().__init__(name="lore", description=DESCRIPTION)
        groups: dict[str, app_commands.Group] = {}
        for command in registry:
            if len(command.path) == 1:
                self.add_command(subcommand(command, run))
                continue
            name = command.path[0]
            if name not in groups:
                groups[name] = app_commands.Group(name=name, description=registry.groups[name])
                self.add_command(groups[name])
            groups[name].add_command(subcommand(command, run))


class LoreTree(app_commands.CommandTree):
    """Routes a command this process does not know (a stale registration) to core too,
    which answers with the help text instead of leaving the user with "did not respond"."""

    def __init__(self, client: discord.Client, *, run: Runner) -> None:
        super().__init__(client)
        self._run = run

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        if isinstance(error, app_commands.CommandNotFound):
            await self._run(interaction)
            return
        log.error("/lore failed", exc_info=error)
        if not interaction.response.is_done():
            await interaction.response.send_message(
                "Something went wrong; please try again.", ephemeral=True
            )
