"""The Discord bot: gateway events in, one core service call each, rendered replies out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import discord
import yarl

from adapters.discord.commands import LoreGroup, LoreTree
from adapters.discord.events import (
    Place,
    admin_command,
    admin_grant,
    command_parts,
    command_text,
    incoming_message,
    mentions_user,
    place_of,
    promote_text,
    strip_mentions,
    thread_name,
)
from adapters.discord.privacy import DiscordPrivacy, SharedServers
from adapters.discord.render import (
    FAILURE,
    UPLOAD_FAILURE,
    FeedbackButton,
    ShareButton,
    chart_file,
    feedback_view,
    render_answer,
    render_text,
    share_view,
)
from adapters.discord.reply import DiscordReply
from core.admin import AdminCommand, AdminService, CommandResult
from core.answer import AnswerService
from core.errors import LorekeeperError
from core.types import IncomingFile, IncomingMessage, Platform, Progress
from core.uploads import UploadService

log = logging.getLogger(__name__)
THREAD_ALREADY_EXISTS = 160004  # Discord error code: a thread was already started from it
VOTE_FAILED = "Sorry, I couldn't save that vote; please try again."
SHARE_FAILED = "Sorry, I couldn't share that file; please try again."


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
    """Mentions, thread follow-ups, DMs, attachments and their deletion, `/lore`, and the
    feedback and share buttons. ``privacy`` is core's PrivacyChecker for Discord."""

    def __init__(
        self,
        *,
        answers: AnswerService,
        uploads: UploadService,
        admin: AdminService,
        guild_id: int | None = None,
        admin_role: str | None = None,
        edit_interval: float = 1.0,
        **options: Any,
    ) -> None:
        # Answers quote documents and progress lines name files: nothing the bot sends may ping.
        options["allowed_mentions"] = discord.AllowedMentions.none()
        super().__init__(intents=intents(), **options)
        self.answers = answers
        self.uploads = uploads
        self.admin = admin
        self._guild_id = guild_id
        self._admin_role = admin_role
        self._interval = edit_interval
        self._work: set[asyncio.Task[Any]] = set()
        self.privacy = DiscordPrivacy(self)
        self.shared_servers = SharedServers(self)
        self.tree = LoreTree(self, run=self.run_command)
        self.tree.add_command(LoreGroup(self.run_command))

    async def setup_hook(self) -> None:
        self.add_dynamic_items(FeedbackButton, ShareButton)
        if self._guild_id:
            guild = discord.Object(id=self._guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
        else:
            synced = await self.tree.sync()
        log.info("synced %d application commands", len(synced))

    # --- in-flight work (graceful shutdown waits for it) -------------------------------

    @contextlib.contextmanager
    def _tracked(self) -> Iterator[None]:
        task = asyncio.current_task()
        if task is not None:
            self._work.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._work.discard(task)

    def in_flight(self) -> int:
        """Handlers still running (answers, uploads, commands, clicks)."""
        return len(self._work)

    async def drain(self, within: float) -> None:
        """Wait (up to ``within`` seconds) for running handlers to finish."""
        pending = {t for t in self._work if t is not asyncio.current_task()}
        if pending:
            await asyncio.wait(pending, timeout=within)

    # --- messages ----------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        with self._tracked():
            me = self.user
            if me is None or message.author.bot or message.author.id == me.id:
                return
            channel = await self._resolved_channel(message)
            place = place_of(channel, guild=message.guild, user_id=message.author.id)
            if not await self._addressed(message, place, me.id):
                return
            await self._handle(message, channel, place, me.id)

    async def _resolved_channel(self, message: discord.Message) -> Any:
        """The message's channel with its type and parent (fetched if not cached)."""
        channel = message.channel
        if isinstance(channel, discord.PartialMessageable) and message.guild is not None:
            try:
                return await self.fetch_channel(channel.id)
            except discord.HTTPException:
                log.warning("could not fetch channel %s", channel.id)
        return channel

    async def _addressed(self, message: discord.Message, place: Place, bot_id: int) -> bool:
        """A mention, a DM, or any message in a thread the bot has answered in."""
        if place.is_direct or mentions_user(message, bot_id):
            return True
        if place.thread_id is None:
            return False
        probe = incoming_message(message, place, thread_id=place.thread_id, bot_id=bot_id)
        return await self.answers.knows_thread(probe)

    async def _handle(
        self, message: discord.Message, channel: Any, place: Place, bot_id: int
    ) -> None:
        target, thread_id = channel, place.thread_id
        reply: DiscordReply | None = None
        try:
            if thread_id is None:
                target, thread_id = await self._start_thread(message, channel)
            admin = bool(message.attachments) and self._author_is_admin(message)
            incoming = incoming_message(
                message,
                place,
                thread_id=thread_id,
                bot_id=bot_id,
                author_is_admin=admin,
                dm_workspaces=await self._dm_workspaces(place, message.author.id),
            )
            if incoming.files and await self.uploads.claim(incoming):
                for attachment, file in zip(message.attachments, incoming.files, strict=True):
                    await self._ingest(incoming, file, attachment, target)
                await self.uploads.finished(incoming)
            if incoming.text:
                reply = DiscordReply(target, interval=self._interval)
                await reply.typing()
                answer = await self.answers.answer(incoming, reply)
                if not answer.duplicate:
                    await reply.answer(answer)
        except Exception:
            log.exception("answering message %s failed", message.id)
            await self._tell_failure(reply, target)

    async def _tell_failure(self, reply: DiscordReply | None, target: Any) -> None:
        try:
            if reply is not None:
                await reply.fail()
            else:
                await target.send(FAILURE)
        except Exception:
            log.exception("could not even post the failure notice")

    async def _start_thread(self, message: discord.Message, channel: Any) -> tuple[Any, str]:
        """A thread from the mention (on a repeated delivery, the one already started).

        Without permission to create threads, answer in the channel itself.
        """
        bot_id = self.user.id if self.user else 0
        first_file = message.attachments[0].filename if message.attachments else "Lorekeeper"
        name = thread_name(strip_mentions(message.content, bot_id), fallback=first_file)
        try:
            thread = await message.create_thread(name=name)
            return thread, str(thread.id)
        except discord.HTTPException as exc:
            if exc.code != THREAD_ALREADY_EXISTS:
                log.warning("failed to create thread (%s): answering in the channel", exc.status)
                return channel, str(message.id)
        # A thread started from a message has the message's id.
        existing = self.get_channel(message.id) or await self.fetch_channel(message.id)
        return existing, str(message.id)

    async def _ingest(
        self,
        incoming: IncomingMessage,
        file: IncomingFile,
        attachment: discord.Attachment,
        target: Any,
    ) -> None:
        reply = DiscordReply(target, label=file.filename, interval=self._interval)
        refusal = self.uploads.precheck(file)
        if refusal is not None:
            await reply.finish_upload(refusal)
            return
        try:
            await reply.progress(Progress("downloading", 0.0))
            data = await attachment.read()
            outcome = await self.uploads.ingest(incoming, file, data, reply)
            buttons = share_view(outcome.document_id, outcome.share_with) if outcome.ok else None
            await reply.finish_upload(outcome.message, buttons=buttons)
        except Exception:
            log.exception("upload of attachment %s failed", file.file_id)
            await reply.fail(UPLOAD_FAILURE.format(name=file.filename))

    # --- /lore ---------------------------------------------------------------------------

    async def run_command(self, interaction: discord.Interaction) -> None:
        """Defer at once (ephemeral), run the command in core, show its result."""
        with self._tracked():
            await interaction.response.defer(ephemeral=True, thinking=True)
            try:
                result = await self.admin.execute(await self._admin_command(interaction))
                await self._show_result(interaction, result)
            except Exception:
                log.exception("/lore failed (interaction %s)", interaction.id)
                with contextlib.suppress(discord.HTTPException):
                    await interaction.edit_original_response(content=FAILURE, embeds=[], view=None)

    async def _admin_command(
        self, interaction: discord.Interaction, *, text: str | None = None
    ) -> AdminCommand:
        """The `/lore` command of an interaction (``text``: what a button stands for)."""
        user = interaction.user
        place = place_of(interaction.channel, guild=interaction.guild, user_id=user.id)
        if text is None:
            text = command_text(*command_parts(interaction.data or {}))
        admin = interaction.guild is not None and self._grants_admin(
            user, manage_guild=interaction.permissions.manage_guild
        )
        return admin_command(
            place=place,
            user=user,
            text=text,
            admin=admin,
            event_id=str(interaction.id),
            received_at=interaction.created_at,
            dm_workspaces=await self._dm_workspaces(place, user.id),
        )

    def _author_is_admin(self, message: discord.Message) -> bool:
        """Whether a guild message's author is an admin, by the rule `/lore` uses (Manage
        Server is a server-wide permission: no channel overwrite grants or denies it)."""
        author = message.author
        if message.guild is None or not isinstance(author, discord.Member):
            return False
        return self._grants_admin(author, manage_guild=author.guild_permissions.manage_guild)

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

    async def _dm_workspaces(self, place: Place, user_id: int) -> tuple[str, ...]:
        return await self.shared_servers.of(user_id) if place.is_direct else ()

    async def _show_result(self, interaction: discord.Interaction, result: CommandResult) -> None:
        pieces = render_answer(result.answer) if result.answer else render_text(result.text)
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
        with self._tracked():
            await interaction.response.defer()
            user = interaction.user
            place = place_of(interaction.channel, guild=interaction.guild, user_id=user.id)
            try:
                up, down = await self.answers.feedback(
                    platform=Platform.DISCORD.value,
                    workspace_id=place.workspace_id,
                    user_id=str(user.id),
                    message_id=message_id,
                    value=value,
                )
                await interaction.edit_original_response(
                    view=feedback_view(message_id, up=up, down=down)
                )
            except LorekeeperError as exc:
                log.warning("vote on %s refused: %s", message_id, exc.reason)
                await self._tell_clicker(interaction, exc.user_message)
            except Exception:
                log.exception("storing feedback for %s failed", message_id)
                await self._tell_clicker(interaction, VOTE_FAILED)

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
        with self._tracked():
            await interaction.response.defer()
            try:
                command = await self._admin_command(
                    interaction, text=promote_text(document_id, namespace)
                )
                result = await self.admin.execute(command)
                if result.ok:
                    await interaction.edit_original_response(view=None)
                await self._tell_clicker(interaction, result.text)
            except Exception:
                log.exception("sharing %s with %s failed", document_id, namespace)
                await self._tell_clicker(interaction, SHARE_FAILED)

    # --- deletions on Discord ----------------------------------------------------------------

    async def on_raw_message_delete(self, event: discord.RawMessageDeleteEvent) -> None:
        await self._forget_messages([event.message_id], guild_id=event.guild_id)

    async def on_raw_bulk_message_delete(self, event: discord.RawBulkMessageDeleteEvent) -> None:
        await self._forget_messages(sorted(event.message_ids), guild_id=event.guild_id)

    async def _forget_messages(self, message_ids: list[int], *, guild_id: int | None) -> None:
        """Delete the documents made from the attachments of deleted messages."""
        with self._tracked():
            # A DM's delete event names no user, so it cannot name the DM's workspace; message
            # ids are unique across Discord anyway.
            workspace = str(guild_id) if guild_id is not None else None
            for message_id in message_ids:
                try:
                    gone = await self.uploads.deleted_on_platform(
                        Platform.DISCORD.value, message_id=str(message_id), workspace=workspace
                    )
                except Exception:
                    log.exception("forgetting the files of deleted message %s failed", message_id)
                    continue
                if gone:
                    log.info("message %s was deleted: %d document(s) removed", message_id, gone)


__all__ = ["LoreClient", "intents", "point_at"]
