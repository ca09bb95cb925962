"""Discord's message context-menu commands: "Ask Lorekeeper" and "Save thread to Lorekeeper".

Both are application commands of type 3 (message): the interaction's ``data.target_id`` names
the chosen message and ``data.resolved.messages`` carries it. Asking goes through the
conversation pipeline like a mention, as the person who asked, answered in a thread started
from the message (or in its own thread), or privately in the interaction's ephemeral
follow-ups where the bot cannot post. Saving first asks where, in an ephemeral menu
(``adapters/discord/menu.py``) offering what core allows the saver; a pick reads the thread's
history and hands its people's posts to ``UploadService.save_thread``.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from adapters.discord.events import Place, incoming_message, place_of, strip_mentions
from adapters.discord.menu import MAX_OPTIONS, PROMPT, SaveMenu
from adapters.discord.render import only, owner_save_view, plain, save_suggestion
from adapters.discord.reply import DiscordReply
from core.threads import MAX_POSTS, ThreadPost
from core.types import IncomingFile, IncomingMessage
from core.wording import SAVE_THREAD_FAILED

if TYPE_CHECKING:
    from adapters.discord.client import LoreClient

log = logging.getLogger(__name__)

ASK = "Ask Lorekeeper"
SAVE = "Save thread to Lorekeeper"
NAMES = (ASK, SAVE)
ANSWERED_IN = "I answered in <#{thread}>."
ANSWERED_PRIVATELY = "I can't post where that message is, so only you see this answer."
NOT_READABLE = "I can't read that thread; check that I may see it and its history."
SAVING = "Saving the thread…"
_THREADS = (discord.ChannelType.public_thread, discord.ChannelType.private_thread)
_SPOKEN = (discord.MessageType.default, discord.MessageType.reply)


def context_menus(client: LoreClient) -> list[app_commands.ContextMenu]:
    """The two message commands, bound to ``client``."""
    actions = MessageActions(client)
    return [
        app_commands.ContextMenu(name=ASK, callback=actions.ask),
        app_commands.ContextMenu(name=SAVE, callback=actions.offer),
    ]


def may_post(permissions: discord.Permissions) -> bool:
    """Whether the bot's permissions where the command was used let it answer there."""
    return permissions.view_channel and permissions.send_messages


class MessageActions:
    def __init__(self, client: LoreClient) -> None:
        self._client = client

    # -- "Ask Lorekeeper" -----------------------------------------------------------------------

    async def ask(self, interaction: discord.Interaction, message: discord.Message) -> None:
        client = self._client
        with client.tracked():
            await interaction.response.defer(ephemeral=True, thinking=True)
            user = interaction.user
            place = place_of(message.channel, guild=interaction.guild, user_id=user.id)
            bot_id = client.user.id if client.user else 0
            incoming = incoming_message(
                message, place, thread_id=place.thread_id or str(message.id), bot_id=bot_id
            )
            incoming = replace(
                incoming,
                author_id=str(user.id),
                author_name=user.display_name,
                event_id=f"ask:{message.id}:{user.id}",
                received_at=interaction.created_at,
            )
            private = not may_post(interaction.app_permissions)
            channel = _AskThread(client, interaction, message, place, private=private)
            await client.conversations.handle(
                incoming, channel, addressed=True, files=client.attachments(message)
            )
            if not channel.private:
                with contextlib.suppress(discord.HTTPException):
                    where = getattr(channel.target, "id", message.channel.id)
                    await interaction.edit_original_response(
                        content=ANSWERED_IN.format(thread=where)
                    )

    # -- "Save thread to Lorekeeper" ------------------------------------------------------------

    async def offer(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """The menu of where the user may save the message's thread (only they see it); or
        why they may save it nowhere."""
        client = self._client
        with client.tracked():
            await interaction.response.defer(ephemeral=True, thinking=True)
            menu: SaveMenu | None = None
            try:
                thread = await self._thread_of(message)
                request = self._request(interaction, message, thread)
                uploads = client.conversations.uploads
                choices = await uploads.save_choices(request, limit=MAX_OPTIONS)
                if choices.refusal is None:
                    pick = partial(self._picked, message)
                    menu = SaveMenu(choices, user_id=interaction.user.id, on_pick=pick)
                said = choices.refusal or PROMPT
                if choices.suggest and thread is not None:
                    said = await self._suggest(request, thread)
            except discord.HTTPException as exc:
                log.warning("finding the thread failed (%s)", exc.status)
                said = NOT_READABLE
            except Exception:
                log.exception("offering to save the thread of %s failed", message.id)
                said = SAVE_THREAD_FAILED
            with contextlib.suppress(discord.HTTPException):
                await interaction.edit_original_response(content=plain(said), view=menu)

    async def _suggest(self, request: IncomingMessage, thread: Any) -> str:
        """A member may not save: ask the owner in the thread to (pinging only them); what
        the member reads."""
        call = await self._client.conversations.suggest_save(request)
        if call.refusal is None:
            try:
                await thread.send(
                    save_suggestion(call.owner, call.asker, call.namespace),
                    view=owner_save_view(int(thread.id)),
                    allowed_mentions=only(call.owner),
                )
            except discord.HTTPException as exc:
                log.warning("suggesting a save failed (%s)", exc.status)
                await self._client.conversations.suggestion_failed(request)
                return SAVE_THREAD_FAILED
        return call.said

    async def _picked(
        self, message: discord.Message, interaction: discord.Interaction, into: str
    ) -> None:
        """A pick in the menu: the menu goes, the thread is saved there (if the picker may)."""
        with self._client.tracked():
            await interaction.response.edit_message(content=SAVING, view=None)
            said = await self._saved(interaction, message, into)
            with contextlib.suppress(discord.HTTPException):
                await interaction.edit_original_response(content=plain(said))

    async def save(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Save the message's thread where the place's files go (the owner's "Save thread")."""
        with self._client.tracked():
            await interaction.response.defer(ephemeral=True, thinking=True)
            said = await self._saved(interaction, message)
            with contextlib.suppress(discord.HTTPException):
                await interaction.edit_original_response(content=plain(said))

    async def _saved(
        self, interaction: discord.Interaction, message: discord.Message, into: str | None = None
    ) -> str:
        """What saving the thread came to, in words (a failure's too)."""
        try:
            return await self._save(interaction, message, into)
        except discord.HTTPException as exc:
            log.warning("reading the thread failed (%s)", exc.status)
            return NOT_READABLE
        except Exception:
            log.exception("saving the thread of %s failed", message.id)
            return SAVE_THREAD_FAILED

    async def _save(
        self, interaction: discord.Interaction, message: discord.Message, into: str | None
    ) -> str:
        client = self._client
        thread = await self._thread_of(message)
        raw = [message] if thread is None else await self._history(thread)
        bot_id = client.user.id if client.user else 0
        posts = [
            ThreadPost(m.author.display_name, m.created_at, strip_mentions(m.content, bot_id))
            for m in raw
            if not m.author.bot and m.type in _SPOKEN
        ]
        request = self._request(interaction, message, thread)
        guild = interaction.guild_id or "@me"
        outcome = await client.conversations.uploads.save_thread(
            request,
            posts,
            permalink=f"https://discord.com/channels/{guild}/{request.thread_id}",
            root_id=request.thread_id,
            into=into,
        )
        return outcome.message

    def _request(
        self, interaction: discord.Interaction, message: discord.Message, thread: Any
    ) -> IncomingMessage:
        """The saver's request: the thread (``thread``, else the message alone), asked by the
        interaction's user, with their admin status."""
        client = self._client
        root = thread.id if thread is not None else message.id
        user = interaction.user
        place = place_of(thread or message.channel, guild=interaction.guild, user_id=user.id)
        admin = interaction.guild is not None and client.grants_admin(
            user, manage_guild=interaction.permissions.manage_guild
        )
        bot_id = client.user.id if client.user else 0
        return replace(
            incoming_message(message, place, thread_id=str(root), bot_id=bot_id),
            author_id=str(user.id),
            author_name=user.display_name,
            text="",
            files=(),
            event_id=f"save:{root}:{user.id}",
            received_at=interaction.created_at,
            author_is_admin=admin,
        )

    async def _thread_of(self, message: discord.Message) -> Any:
        """The thread the message is in, or the one started from it; None without one."""
        channel = message.channel
        if getattr(channel, "type", None) in _THREADS:
            return channel
        if message.guild is None:
            return None
        found = self._client.get_channel(message.id)
        if found is not None:
            return found
        try:
            return await self._client.fetch_channel(message.id)
        except discord.NotFound:
            return None

    async def _history(self, thread: Any) -> list[discord.Message]:
        """The thread's starter message (in its parent) and its messages, oldest first."""
        found = [m async for m in thread.history(limit=MAX_POSTS)]
        found.reverse()
        parent = getattr(thread, "parent", None)
        if parent is not None:
            with contextlib.suppress(discord.HTTPException):
                found.insert(0, await parent.fetch_message(thread.id))
        return found[:MAX_POSTS]


class _Privately:
    """The interaction's ephemeral messages as a channel: the first replaces "thinking"."""

    def __init__(self, interaction: discord.Interaction) -> None:
        self._interaction = interaction
        self._used = False

    async def send(self, content: str, **kwargs: Any) -> discord.Message:
        if not self._used:
            self._used = True
            return await self._interaction.edit_original_response(content=content, **kwargs)
        return await self._interaction.followup.send(content, ephemeral=True, wait=True, **kwargs)

    async def typing(self) -> None:
        return None


class _AskThread:
    """Where an "Ask Lorekeeper" answer goes: a thread from the chosen message (as for a
    mention), its own thread, or the asker's ephemeral messages where the bot cannot post."""

    def __init__(
        self,
        client: LoreClient,
        interaction: discord.Interaction,
        message: discord.Message,
        place: Place,
        *,
        private: bool,
    ) -> None:
        self._client = client
        self._interaction = interaction
        self._message = message
        self._place = place
        self.private = private
        self.target: Any = _Privately(interaction) if private else message.channel

    async def prepare(self, message: IncomingMessage) -> IncomingMessage:
        client = self._client
        if not self.private:
            try:
                if self._place.thread_id is None:
                    self.target = await client.start_thread(self._message, self.target)
                with contextlib.suppress(discord.HTTPException):
                    await self.target.typing()
            except discord.Forbidden:
                self.private, self.target = True, _Privately(self._interaction)
        user = self._interaction.user
        workspaces = await client.dm_workspaces(self._place, user.id)
        admin = (
            bool(message.files)
            and isinstance(user, discord.Member)
            and client.grants_admin(user, manage_guild=user.guild_permissions.manage_guild)
        )
        return replace(message, author_is_admin=admin, dm_workspaces=workspaces)

    def reply(self, file: IncomingFile | None = None) -> DiscordReply:
        return self._client.reply(self.target, label=file.filename if file else "")
