"""The Discord bot: gateway events in, one core service call each, rendered replies out."""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import replace
from typing import Any

import discord
import yarl

from adapters.discord.actions import MessageActions, context_menus
from adapters.discord.commands import LoreGroup, LoreTree
from adapters.discord.events import (
    Place,
    admin_command,
    admin_grant,
    attachments_left,
    command_request,
    incoming_message,
    mentions_user,
    place_of,
    starter_survives,
    strip_mentions,
    thread_name,
)
from adapters.discord.privacy import DiscordPrivacy, SharedServers
from adapters.discord.render import (
    ASK_OWNER_OFFER,
    AskOwnerButton,
    FeedbackButton,
    OwnerSaveButton,
    ShareButton,
    ask_owner_view,
    chart_file,
    feedback_view,
    only,
    owner_mention,
    owner_save_view,
    render_answer,
    render_rich,
    render_text,
    save_offer,
)
from adapters.discord.reply import DiscordReply
from core.admin import AdminCommand, AdminService, CommandResult
from core.answer import AnswerService
from core.commands import Request, promotion
from core.conversation import DRAIN_SECONDS, ConversationPipeline, InFlight
from core.owners import SaveOffer
from core.types import IncomingFile, IncomingMessage, Platform

log = logging.getLogger(__name__)

# what a person writes (not a pin, a join or another system message)
_POSTS = (discord.MessageType.default, discord.MessageType.reply)
THREAD_ALREADY_EXISTS = 160004  # Discord error code: a thread was already started from it


def point_at(api_url: str, gateway_url: str | None = None) -> None:
    """Send discord.py's REST calls to ``api_url`` and, when given, its gateway elsewhere.

    discord.py keeps both as class attributes, so this applies to the whole process.
    """
    discord.http.Route.BASE = api_url.rstrip("/") + "/api/v10"
    if gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def intents() -> discord.Intents:
    wanted = discord.Intents.default()
    wanted.message_content = True
    return wanted


class LoreClient(discord.Client):
    """Mentions, thread follow-ups, DMs, attachments and their deletion (with their message,
    thread or channel, or edited off their message), `/lore`, and the feedback and share
    buttons. ``privacy`` is core's PrivacyChecker for Discord."""

    def __init__(
        self,
        *,
        conversations: ConversationPipeline,
        answers: AnswerService,
        admin: AdminService,
        guild_id: int | None = None,
        admin_role: str | None = None,
        edit_interval: float = 1.0,
        **options: Any,
    ) -> None:
        # Answers quote documents and progress lines name files: nothing the bot sends may ping.
        options["allowed_mentions"] = discord.AllowedMentions.none()
        super().__init__(intents=intents(), **options)
        self.conversations = conversations
        self.answers = answers
        self.uploads = conversations.uploads
        self.admin = admin
        self._guild_id = guild_id
        self._admin_role = admin_role
        self._interval = edit_interval
        self._work = InFlight()
        self.privacy = DiscordPrivacy(self)
        self.shared_servers = SharedServers(self)
        self.tree = LoreTree(self, run=self.run_command)
        self.tree.add_command(LoreGroup(self.run_command))
        for menu in context_menus(self):  # "Ask Lorekeeper", "Save thread to Lorekeeper"
            self.tree.add_command(menu)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(FeedbackButton, ShareButton, AskOwnerButton, OwnerSaveButton)
        if self._guild_id:
            guild = discord.Object(id=self._guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
        else:
            synced = await self.tree.sync()
        log.info("synced %d application commands", len(synced))

    # --- in-flight work (graceful shutdown waits for it) -------------------------------

    def tracked(self) -> contextlib.AbstractContextManager[None]:
        """Count the current handler in while it runs (shutdown waits for it)."""
        return self._work.tracked()

    def in_flight(self) -> int:
        """Handlers still running (answers, uploads, commands, clicks)."""
        return len(self._work)

    async def drain(self, within: float = DRAIN_SECONDS) -> None:
        """Wait (up to ``within`` seconds) for running handlers to finish."""
        await self._work.drain(within)

    # --- messages ----------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        with self._work.tracked():
            me = self.user
            if me is None or message.author.bot or message.author.id == me.id:
                return
            channel = await self._resolved_channel(message)
            place = place_of(channel, guild=message.guild, user_id=message.author.id)
            addressed = place.is_direct or mentions_user(message, me.id)
            plain_post = place.thread_id is None and message.type in _POSTS
            if not (addressed or place.thread_id is not None or plain_post):
                return  # a system message outside threads
            # A thread started from a message has the message's id.
            thread_id = place.thread_id or str(message.id)
            incoming = incoming_message(message, place, thread_id=thread_id, bot_id=me.id)
            # unaddressed, a follow-up in a thread core may know or a top-level post core may
            # answer unasked (autoanswer): core decides

            async def offer_save(offer: SaveOffer) -> None:
                with contextlib.suppress(discord.HTTPException):
                    await channel.send(
                        save_offer(offer.owner),
                        view=owner_save_view(int(offer.thread)),
                        allowed_mentions=only(offer.owner),
                    )

            await self.conversations.handle(
                incoming,
                _DiscordThread(self, message, channel, place),
                addressed=addressed,
                files=_Attachments(message.attachments),
                offer_save=offer_save,
            )

    async def _resolved_channel(self, message: discord.Message) -> Any:
        """The message's channel with its type and parent (fetched if not cached)."""
        channel = message.channel
        if isinstance(channel, discord.PartialMessageable) and message.guild is not None:
            try:
                return await self.fetch_channel(channel.id)
            except discord.HTTPException:
                log.warning("could not fetch channel %s", channel.id)
        return channel

    async def start_thread(self, message: discord.Message, channel: Any) -> Any:
        """A thread from the mention (on a repeated delivery, the one already started).

        Without permission to create threads, answer in the channel itself.
        """
        bot_id = self.user.id if self.user else 0
        first_file = message.attachments[0].filename if message.attachments else "Lorekeeper"
        name = thread_name(strip_mentions(message.content, bot_id), fallback=first_file)
        try:
            return await message.create_thread(name=name)
        except discord.HTTPException as exc:
            if exc.code != THREAD_ALREADY_EXISTS:
                log.warning("failed to create thread (%s): answering in the channel", exc.status)
                return channel
        return self.get_channel(message.id) or await self.fetch_channel(message.id)

    def reply(self, target: Any, *, label: str = "") -> DiscordReply:
        return DiscordReply(target, label=label, interval=self._interval)

    # --- /lore ---------------------------------------------------------------------------

    async def run_command(self, interaction: discord.Interaction) -> None:
        """Defer at once (ephemeral), run the command in core, show its result."""
        with self._work.tracked():
            await interaction.response.defer(ephemeral=True, thinking=True)
            result = await self.admin.execute(await self._admin_command(interaction))
            try:
                await self._show_result(interaction, result)
            except discord.HTTPException as exc:
                log.warning("showing /lore's result failed (%s)", exc.status)

    async def _admin_command(
        self, interaction: discord.Interaction, *, request: Request | None = None
    ) -> AdminCommand:
        """The `/lore` command of an interaction (``request``: what a button stands for)."""
        user = interaction.user
        place = place_of(interaction.channel, guild=interaction.guild, user_id=user.id)
        if request is None:
            request = command_request(interaction.data or {})
        admin = interaction.guild is not None and self._grants_admin(
            user, manage_guild=interaction.permissions.manage_guild
        )
        return admin_command(
            place=place,
            user=user,
            request=request,
            admin=admin,
            event_id=str(interaction.id),
            received_at=interaction.created_at,
            dm_workspaces=await self.dm_workspaces(place, user.id),
        )

    def author_is_admin(self, message: discord.Message) -> bool:
        """Whether a guild message's author is an admin, by the rule `/lore` uses (Manage
        Server is a server-wide permission: no channel overwrite grants or denies it)."""
        author = message.author
        if message.guild is None or not isinstance(author, discord.Member):
            return False
        return self._grants_admin(author, manage_guild=author.guild_permissions.manage_guild)

    def grants_admin(self, member: Any, *, manage_guild: bool) -> bool:
        """Whether ``member`` is an admin by the rule `/lore` uses."""
        return self._grants_admin(member, manage_guild=manage_guild)

    def attachments(self, message: discord.Message) -> _Attachments:
        """A message's attachments as core's FileSource."""
        return _Attachments(message.attachments)

    def _grants_admin(self, member: Any, *, manage_guild: bool) -> bool:
        roles = [(r.id, r.name) for r in getattr(member, "roles", [])]
        grant = admin_grant(manage_guild=manage_guild, roles=roles, admin_role=self._admin_role)
        if grant == "role_name":
            log.warning(
                "user %s is an admin by a role *named* %r; set DISCORD_ADMIN_ROLE to the role's "
                "id so that no other role of that name counts",
                member.id,
                self._admin_role,
            )
        return grant is not None

    async def dm_workspaces(self, place: Place, user_id: int) -> tuple[str, ...]:
        return await self.shared_servers.of(user_id) if place.is_direct else ()

    async def _show_result(self, interaction: discord.Interaction, result: CommandResult) -> None:
        pieces = render_answer(result.answer) if result.answer else render_rich(result.body)
        first, rest = pieces[0], pieces[1:]
        view = feedback_view(first.feedback_for) if first.feedback_for and not rest else None
        extra: dict[str, Any] = {}
        if result.chart_png is not None:  # on the same (ephemeral) message as the table
            extra["attachments"] = [chart_file(result.chart_png)]
        await interaction.edit_original_response(
            content=first.content, embeds=first.embeds, view=view, **extra
        )
        for piece in rest:
            more: dict[str, Any] = {"embeds": piece.embeds}
            if piece.feedback_for:
                more["view"] = feedback_view(piece.feedback_for)
            await interaction.followup.send(piece.content, ephemeral=result.ephemeral, **more)

    # --- 👍/👎 ---------------------------------------------------------------------------

    async def feedback_clicked(
        self, interaction: discord.Interaction, message_id: uuid.UUID, value: int
    ) -> None:
        """Store the vote (one per user, changeable) and show the counts on the buttons."""
        with self._work.tracked():
            await interaction.response.defer()
            user = interaction.user
            place = place_of(interaction.channel, guild=interaction.guild, user_id=user.id)
            vote = await self.conversations.vote(
                platform=Platform.DISCORD.value,
                workspace_id=place.workspace_id,
                user_id=str(user.id),
                message_id=message_id,
                value=value,
            )
            if vote.refusal is not None:
                await self._tell_clicker(interaction, vote.refusal)
                return
            with contextlib.suppress(discord.HTTPException):
                await interaction.edit_original_response(
                    view=feedback_view(message_id, up=vote.up, down=vote.down)
                )
                if vote.ask_owner:  # to the voter alone
                    await interaction.followup.send(
                        ASK_OWNER_OFFER, view=ask_owner_view(message_id), ephemeral=True
                    )

    # --- owners who get asked ----------------------------------------------------------

    async def ask_owner_clicked(
        self, interaction: discord.Interaction, answer_id: uuid.UUID
    ) -> None:
        """Mention the owner in the answer's thread with its question (once per thread);
        the clicker alone hears what happened."""
        with self._work.tracked():
            await interaction.response.defer(ephemeral=True, thinking=True)
            user = interaction.user
            place = place_of(interaction.channel, guild=interaction.guild, user_id=user.id)
            call = await self.conversations.ask_owner(
                platform=Platform.DISCORD.value,
                workspace_id=place.workspace_id,
                user_id=str(user.id),
                answer_id=answer_id,
            )
            said = call.said
            if call.refusal is None:
                try:
                    target = await self._thread_channel(call.thread, call.channel)
                    await target.send(
                        owner_mention(call.owner, call.namespace, call.question),
                        allowed_mentions=only(call.owner),
                    )
                except (discord.HTTPException, ValueError):
                    log.warning("mentioning the owner in %s failed", call.thread)
            with contextlib.suppress(discord.HTTPException):
                await interaction.edit_original_response(content=render_text(said)[0].content)

    async def _thread_channel(self, thread: str, channel: str) -> Any:
        """Where a thread's messages go: the thread, or its channel when it is none."""
        for key in (thread, channel):
            found = self.get_channel(int(key))
            if found is not None:
                return found
            with contextlib.suppress(discord.NotFound):
                return await self.fetch_channel(int(key))
        raise ValueError(f"no channel {channel}")

    async def owner_save_clicked(self, interaction: discord.Interaction, thread_id: int) -> None:
        """The owner's "Save thread": saved as the message command saves it, as the clicker."""
        message = interaction.message
        if message is None or getattr(interaction.channel, "id", None) != thread_id:
            return
        await MessageActions(self).save(interaction, message)

    async def _tell_clicker(self, interaction: discord.Interaction, text: str) -> None:
        with contextlib.suppress(discord.HTTPException):
            for piece in render_text(text):
                await interaction.followup.send(piece.content, ephemeral=True)

    # --- "Share with NAMESPACE" ----------------------------------------------------------

    async def share_clicked(
        self, interaction: discord.Interaction, document_id: uuid.UUID, namespace: str
    ) -> None:
        """Run `/lore docs promote` as the clicker, tell them the outcome privately, and take
        the share buttons away once the file is shared."""
        with self._work.tracked():
            await interaction.response.defer()
            command = await self._admin_command(
                interaction, request=promotion(document_id, namespace)
            )
            result = await self.admin.execute(command)  # every failure comes back as words
            with contextlib.suppress(discord.HTTPException):
                if result.ok:
                    await interaction.edit_original_response(view=None)
                for piece in render_rich(result.body):
                    await interaction.followup.send(piece.content, ephemeral=True)

    # --- deletions on Discord ----------------------------------------------------------------

    async def on_raw_message_delete(self, event: discord.RawMessageDeleteEvent) -> None:
        await self._forget_messages([event.message_id], guild_id=event.guild_id)

    async def on_raw_bulk_message_delete(self, event: discord.RawBulkMessageDeleteEvent) -> None:
        await self._forget_messages(sorted(event.message_ids), guild_id=event.guild_id)

    async def _forget_messages(self, message_ids: list[int], *, guild_id: int | None) -> None:
        """Delete the documents made from the attachments of deleted messages."""
        # A DM's delete event names no user, so it cannot name the DM's workspace; message
        # ids are unique across Discord anyway.
        await self.conversations.forget(
            Platform.DISCORD.value,
            message_ids=[str(m) for m in message_ids],
            workspace=str(guild_id) if guild_id is not None else None,
        )

    async def on_raw_message_edit(self, event: discord.RawMessageUpdateEvent) -> None:
        """An edit that took attachments off a message deletes their documents."""
        kept = attachments_left(event.data)
        before = event.cached_message
        if kept is None or (before and {str(a.id) for a in before.attachments} <= set(kept)):
            return  # nothing was taken off
        with self._work.tracked():
            await self.conversations.forget_removed(
                Platform.DISCORD.value,
                message_id=str(event.message_id),
                kept_file_ids=kept,
                workspace=str(event.guild_id) if event.guild_id is not None else None,
            )

    async def on_raw_thread_delete(self, event: discord.RawThreadDeleteEvent) -> None:
        """A deleted thread (Discord reports no deletion of its messages) deletes the
        documents uploaded in it."""
        survives = starter_survives(self.get_channel(event.parent_id))
        with self._work.tracked():
            await self.conversations.forget_place(
                Platform.DISCORD.value,
                workspace=str(event.guild_id),
                channel_id=str(event.parent_id),
                thread_id=str(event.thread_id),
                surviving_message_id=str(event.thread_id) if survives else None,
            )

    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        """A deleted channel deletes the documents uploaded in it and in its threads."""
        with self._work.tracked():
            await self.conversations.forget_place(
                Platform.DISCORD.value, workspace=str(channel.guild.id), channel_id=str(channel.id)
            )


__all__ = ["LoreClient", "intents", "point_at"]


class _DiscordThread:
    """The replies to one Discord message: in its thread (started from a mention in a plain
    channel when the bot may create threads), with the typing indicator while it works."""

    def __init__(
        self, client: LoreClient, message: discord.Message, channel: Any, place: Place
    ) -> None:
        self._client = client
        self._message = message
        self._target = channel
        self._place = place

    async def prepare(self, message: IncomingMessage) -> IncomingMessage:
        if self._place.thread_id is None:
            self._target = await self._client.start_thread(self._message, self._target)
        if message.text:
            with contextlib.suppress(discord.HTTPException):
                await self._target.typing()
        workspaces = await self._client.dm_workspaces(self._place, self._message.author.id)
        admin = bool(message.files) and self._client.author_is_admin(self._message)
        return replace(message, author_is_admin=admin, dm_workspaces=workspaces)

    def reply(self, file: IncomingFile | None = None) -> DiscordReply:
        return self._client.reply(self._target, label=file.filename if file else "")


class _Attachments:
    """A message's attachments as core's FileSource (Discord describes them in full)."""

    def __init__(self, attachments: list[discord.Attachment]) -> None:
        self._by_id = {str(a.id): a for a in attachments}

    async def resolve(self, file: IncomingFile) -> IncomingFile:
        return file

    async def download(self, file: IncomingFile) -> bytes:
        return await self._by_id[file.file_id].read()
