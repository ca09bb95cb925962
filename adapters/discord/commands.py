"""The `/lore` application command: the same subcommands as `/lore` on Slack.

The options only shape what Discord shows; every callback hands the interaction to one
runner, which rebuilds core's `/lore` text from the interaction's options
(:func:`adapters.discord.events.command_text`), so core parses one grammar.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import discord
from discord import app_commands
from discord.app_commands import Choice

log = logging.getLogger(__name__)

Runner = Callable[[discord.Interaction], Awaitable[None]]
_PERIODS = [Choice(name=p, value=p) for p in ("today", "7d", "30d")]
_BY = [
    Choice(name=b, value=b) for b in ("day", "user", "channel", "namespace", "model", "operation")
]
_IDS = [Choice(name="show platform ids beside names", value="ids")]
_SCOPES = [
    Choice(name=s, value=s) for s in ("user", "workspace", "user-uploads", "workspace-uploads")
]


class LoreGroup(
    app_commands.Group, name="lore", description="Ask Lorekeeper and manage its knowledge"
):
    """`/lore ask|help|usage` and the `namespace`, `docs` and `quota` subgroups."""

    namespace = app_commands.Group(name="namespace", description="Knowledge collections")
    docs = app_commands.Group(name="docs", description="Documents in a namespace")
    quota = app_commands.Group(name="quota", description="Daily token use and limits")

    def __init__(self, run: Runner) -> None:
        super().__init__()
        self._run = run

    @app_commands.command(description="Answer a question privately")
    @app_commands.describe(question="What you want to know")
    async def ask(self, interaction: discord.Interaction, question: str) -> None:
        await self._run(interaction)

    @app_commands.command(name="help", description="What Lorekeeper can do")
    async def help_(self, interaction: discord.Interaction) -> None:
        await self._run(interaction)

    @app_commands.command(description="Tokens and cost (admins)")
    @app_commands.choices(period=_PERIODS, by=_BY, ids=_IDS)
    async def usage(
        self,
        interaction: discord.Interaction,
        period: str | None = None,
        by: str | None = None,
        ids: str | None = None,
    ) -> None:
        await self._run(interaction)

    @namespace.command(name="list", description="The namespaces of this server")
    async def namespace_list(self, interaction: discord.Interaction) -> None:
        await self._run(interaction)

    @namespace.command(name="info", description="Documents and channels of a namespace")
    async def namespace_info(self, interaction: discord.Interaction, name: str) -> None:
        await self._run(interaction)

    @namespace.command(name="create", description="Create a namespace (admins)")
    async def namespace_create(
        self, interaction: discord.Interaction, name: str, description: str | None = None
    ) -> None:
        await self._run(interaction)

    @namespace.command(name="delete", description="Delete a namespace and its documents (admins)")
    async def namespace_delete(self, interaction: discord.Interaction, name: str) -> None:
        await self._run(interaction)

    @namespace.command(name="bind", description="Make a channel search a namespace (admins)")
    async def namespace_bind(
        self,
        interaction: discord.Interaction,
        name: str,
        channel: discord.TextChannel | None = None,
    ) -> None:
        await self._run(interaction)

    @namespace.command(name="unbind", description="Stop a channel searching a namespace (admins)")
    async def namespace_unbind(
        self,
        interaction: discord.Interaction,
        name: str,
        channel: discord.TextChannel | None = None,
    ) -> None:
        await self._run(interaction)

    @namespace.command(
        name="uploads", description="Index files dropped in a channel into a namespace (admins)"
    )
    async def namespace_uploads(
        self,
        interaction: discord.Interaction,
        name: str,
        channel: discord.TextChannel | None = None,
    ) -> None:
        await self._run(interaction)

    @docs.command(name="list", description="Documents in a namespace (default: this channel's)")
    async def docs_list(
        self, interaction: discord.Interaction, namespace: str | None = None
    ) -> None:
        await self._run(interaction)

    @docs.command(name="delete", description="Delete a document by id (its uploader or admins)")
    async def docs_delete(self, interaction: discord.Interaction, id: str) -> None:
        await self._run(interaction)

    @docs.command(
        name="promote",
        description="Share a file of this conversation with a namespace (its uploader or admins)",
    )
    @app_commands.describe(
        id="The document's id (from /lore docs list)", namespace="The namespace to share it with"
    )
    async def docs_promote(self, interaction: discord.Interaction, id: str, namespace: str) -> None:
        await self._run(interaction)

    @quota.command(name="show", description="Today's token use and limits")
    async def quota_show(self, interaction: discord.Interaction) -> None:
        await self._run(interaction)

    @quota.command(name="set", description="Set a daily token limit (admins)")
    @app_commands.choices(scope=_SCOPES)
    async def quota_set(
        self, interaction: discord.Interaction, scope: str, limit: app_commands.Range[int, 0]
    ) -> None:
        await self._run(interaction)


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
