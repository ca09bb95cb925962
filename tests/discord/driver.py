"""DiscordDriver: the scenario suite's ChatDriver on the real discord.py and FakeDiscord.

Users act through the fake (MESSAGE_CREATE, MESSAGE_DELETE, CHANNEL_UPDATE and
INTERACTION_CREATE over the gateway); the bot is the real LoreClient; what users see is read
back from the fake's record of REST calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import time
from typing import Any

from adapters.discord.actions import SAVE
from adapters.discord.client import LoreClient, point_at
from bot.container import Container
from bot.discord_runner import discord_client
from core.conversation import ConversationPipeline
from tests.fakes.discord_server import MANAGE_GUILD, MEMBER_PERMISSIONS, FakeDiscord, PostedMessage
from tests.fakes.groq_server import FakeGroq
from tests.scenarios.driver import BotMessage, Thread

_SOURCE = re.compile(r"^\*\*\d+\.\*\* (?:\[(?P<link>.+?)\]\(|(?P<plain>.+)$)")
_UNESCAPE = re.compile(r"\\([\\*_~`|>\[\]()#-])")


async def start_client(
    fake: FakeDiscord, container: Container, *, ready_within: float = 15.0, **options: Any
) -> tuple[LoreClient, asyncio.Task[None]]:
    """Start the real client against the fake and wait until it is ready."""
    point_at(fake.api_url, fake.gateway_url)
    options = {"guild_ready_timeout": 0.1, "edit_interval": 0.05, **options}
    client = discord_client(container, **options)
    task = asyncio.create_task(client.start("fake-bot-token"))
    deadline = time.monotonic() + ready_within
    while not client.is_ready():
        if task.done():
            task.result()
            raise RuntimeError("client stopped before it was ready")
        if time.monotonic() > deadline:
            raise TimeoutError("client did not become ready")
        await asyncio.sleep(0.02)
    return client, task


async def stop_client(client: LoreClient, task: asyncio.Task[None]) -> None:
    await client.close()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)


def message_text(message: PostedMessage) -> str:
    parts = [message.payload.get("content") or ""]
    for embed in message.payload.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f['name']}\n{f['value']}" for f in embed.get("fields") or []]
    return "\n".join(p for p in parts if p)


def source_titles(message: PostedMessage) -> list[str]:
    titles = []
    for embed in message.payload.get("embeds") or []:
        for line in (embed.get("description") or "").splitlines():
            match = _SOURCE.match(line)
            if match:
                titles.append(_UNESCAPE.sub(r"\1", match["link"] or match["plain"]))
    return titles


def custom_ids(message: PostedMessage) -> list[str]:
    return [
        c.get("custom_id", "")
        for row in message.payload.get("components") or []
        for c in row.get("components") or []
    ]


def to_bot_message(message: PostedMessage) -> BotMessage:
    return BotMessage(
        text=message_text(message),
        sources=source_titles(message),
        has_feedback_buttons=any(i.startswith("lore:fb:") for i in custom_ids(message)),
        edits=message.edits,
    )


class DiscordDriver:
    """Implements tests.scenarios.driver.ChatDriver."""

    def __init__(
        self, fake: FakeDiscord, client: LoreClient, container: Container, groq: FakeGroq
    ) -> None:
        self.fake = fake
        self.client = client
        self.container = container
        self.groq = groq

    @property
    def conversations(self) -> ConversationPipeline:
        return self.client.conversations

    # --- waiting -----------------------------------------------------------------------

    async def settle(self, *, quiet: float = 0.15, limit: float = 60.0) -> None:
        """Wait until no handler runs and the fake has seen no traffic for ``quiet`` s."""
        deadline = time.monotonic() + limit
        while True:
            await asyncio.sleep(0.02)
            if self.client.in_flight() == 0 and self.fake.quiet_for() >= quiet:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the bot did not become idle")

    async def _deliver(self, payload: dict[str, Any], *, times: int = 1) -> None:
        mid = int(payload["id"])
        seen = await self._seen("message", lambda m: m.id == mid)
        self.fake.messages.setdefault(mid, PostedMessage(payload))
        for _ in range(times):
            await self.fake.dispatch("MESSAGE_CREATE", payload)
        await seen
        await self.settle()

    def _thread_of(self, payload: dict[str, Any], channel: str) -> Thread:
        mid = int(payload["id"])
        thread = self.fake.threads_by_message.get(mid)
        assert thread is not None, "the bot did not start a thread from the mention"
        return Thread(channel=str(self.fake.channel_id(channel)), thread=str(thread))

    # --- ChatDriver ----------------------------------------------------------------------

    async def mention(self, text: str, *, user: str = "U1", channel: str = "C1") -> Thread:
        payload = self.fake.message_payload(
            self.fake.channel_id(channel), user, f"<@{self.fake.bot_id}> {text}", mention_bot=True
        )
        await self._deliver(payload)
        return self._thread_of(payload, channel)

    async def speak(self, text: str, *, user: str = "U1", channel: str = "C1") -> Thread:
        """A top-level channel message that does not mention the bot; the thread the bot
        started from it (its id is the message's), or where it would be."""
        payload = self.fake.message_payload(self.fake.channel_id(channel), user, text)
        await self._deliver(payload)
        mid = int(payload["id"])
        thread = self.fake.threads_by_message.get(mid, mid)
        return Thread(channel=str(self.fake.channel_id(channel)), thread=str(thread))

    def platform_writes(self) -> int:
        """Requests so far that show something: posts, edits, threads, typing, reactions."""
        return sum(method in ("POST", "PATCH", "PUT", "DELETE") for method, _ in self.fake.requests)

    async def say_in_thread(
        self, thread: Thread, text: str, *, user: str = "U1", mention: bool = False
    ) -> None:
        content = f"<@{self.fake.bot_id}> {text}" if mention else text
        payload = self.fake.message_payload(int(thread.thread), user, content, mention_bot=mention)
        await self._deliver(payload)

    async def upload(
        self,
        filename: str,
        data: bytes,
        *,
        thread: Thread | None = None,
        user: str = "U1",
        channel: str = "C1",
        text: str | None = None,
    ) -> Thread:
        attachment = self.fake.add_attachment(filename, data)
        if thread is not None:
            payload = self.fake.message_payload(
                int(thread.thread), user, text or "", attachments=[attachment]
            )
            await self._deliver(payload)
            return thread
        payload = self.fake.message_payload(
            self.fake.channel_id(channel),
            user,
            f"<@{self.fake.bot_id}> {text}" if text else f"<@{self.fake.bot_id}>",
            mention_bot=True,
            attachments=[attachment],
        )
        await self._deliver(payload)
        return self._thread_of(payload, channel)

    async def command(
        self, text: str, *, user: str = "U1", channel: str = "C1", admin: bool = False
    ) -> str:
        options, resolved = slash_options(self._schema(), text, fake=self.fake)
        permissions = MEMBER_PERMISSIONS | (MANAGE_GUILD if admin else 0)
        payload = self.fake.command_payload(
            options, user=user, channel=channel, permissions=permissions, resolved=resolved
        )
        record = await self.fake.interact(payload)
        await self.settle()
        shown = [record.original or {}, *record.followups]
        return "\n".join(message_text(PostedMessage(m)) for m in shown if m)

    def _schema(self) -> dict[str, Any]:
        commands = [c for scope in self.fake.commands.values() for c in scope]
        return next(c for c in commands if c["name"] == "lore")

    async def click_feedback(self, thread: Thread, value: int, *, user: str = "U1") -> None:
        vote = "up" if value > 0 else "down"
        last = next(
            m
            for m in reversed(self.fake.messages_in(int(thread.thread)))
            if any(i.startswith("lore:fb:") for i in custom_ids(m))
        )
        custom_id = next(i for i in custom_ids(last) if i.startswith(f"lore:fb:{vote}:"))
        await self.fake.interact(self.fake.click_payload(last, custom_id, user=user))
        await self.settle()

    async def deliver_twice(self, text: str, *, user: str = "U1", channel: str = "C1") -> Thread:
        payload = self.fake.message_payload(
            self.fake.channel_id(channel), user, f"<@{self.fake.bot_id}> {text}", mention_bot=True
        )
        await self._deliver(payload, times=2)
        return self._thread_of(payload, channel)

    # --- trust ---------------------------------------------------------------------------

    async def make_private(self, channel: str) -> None:
        cid = self.fake.channel_id(channel)
        seen = await self._seen("guild_channel_update", lambda before, after: after.id == cid)
        await self.fake.make_private(channel)
        await seen
        await self.settle()

    async def make_public(self, channel: str) -> None:
        cid = self.fake.channel_id(channel)
        seen = await self._seen("guild_channel_update", lambda before, after: after.id == cid)
        await self.fake.make_public(channel)
        await seen
        await self.settle()

    async def dm(self, text: str, *, user: str = "U1") -> Thread:
        """A DM from a member of the guild (the servers a DM reads are its author's)."""
        self.fake.join(user)
        payload = self.fake.dm_payload(user, text)
        await self._deliver(payload)
        return Thread(channel=payload["channel_id"], thread=payload["channel_id"])

    async def delete_upload(self, thread: Thread) -> None:
        carriers = [
            m
            for m in self.fake.messages.values()
            if not m.by_bot
            and m.payload.get("attachments")
            and thread.thread in (m.payload["channel_id"], m.payload["id"])
        ]
        mid = carriers[-1].id
        seen = await self._seen("raw_message_delete", lambda event: event.message_id == mid)
        await self.fake.delete_message(mid)
        await seen
        await self.settle()

    async def click_share(
        self, thread: Thread, namespace: str, *, user: str = "U1", admin: bool = False
    ) -> str:
        """Click "Share with NAMESPACE" (as an admin with Manage Server, when ``admin``)."""
        wanted = re.compile(rf"lore:share:[A-Za-z0-9_-]{{22}}:{re.escape(namespace)}")
        last = next(
            m
            for m in reversed(self.fake.messages_in(int(thread.thread)))
            if any(wanted.fullmatch(i) for i in custom_ids(m))
        )
        custom_id = next(i for i in custom_ids(last) if wanted.fullmatch(i))
        permissions = MEMBER_PERMISSIONS | (MANAGE_GUILD if admin else 0)
        click = self.fake.click_payload(last, custom_id, user=user, permissions=permissions)
        record = await self.fake.interact(click)
        await self.settle()
        return "\n".join(message_text(PostedMessage(m)) for m in record.followups)

    # --- owners and saved threads --------------------------------------------------------

    async def make_owner(self, namespace: str, user: str) -> str:
        await self.command("namespace list", user=user)  # a person the bot knows
        owner = self.fake.user(user)["id"]
        return await self.command(f"namespace owner {namespace} {owner}", admin=True)

    async def click_ask_owner(self, thread: Thread, *, user: str) -> None:
        await self._click_last(thread, "lore:owner:", user=user)

    async def click_offered_save(self, thread: Thread, *, user: str) -> str:
        return await self._click_last(thread, "lore:osave:", user=user)

    async def member_saves(self, thread: Thread, *, user: str) -> str:
        """ "Save thread to Lorekeeper" on the thread's starter message as a member (no menu
        comes for them); what they were told."""
        root = self.fake.messages[int(thread.thread)].payload
        payload = self.fake.message_command_payload(
            SAVE, root, user=user, permissions=MEMBER_PERMISSIONS
        )
        record = await self.fake.interact(payload)
        await self.settle()
        assert record.original is not None
        return message_text(PostedMessage(record.original))

    async def _click_last(self, thread: Thread, prefix: str, *, user: str) -> str:
        """Click the newest button of ours in ``thread`` whose custom id starts ``prefix``;
        what the clicker was shown."""
        await self.settle()
        last = next(
            m
            for m in reversed(self.fake.messages_in(int(thread.thread)))
            if any(i.startswith(prefix) for i in custom_ids(m))
        )
        custom_id = next(i for i in custom_ids(last) if i.startswith(prefix))
        record = await self.fake.interact(self.fake.click_payload(last, custom_id, user=user))
        await self.settle()
        shown = [record.original or {}, *record.followups]
        return "\n".join(message_text(PostedMessage(m)) for m in shown if m)

    async def delete_root(self, thread: Thread) -> None:
        """Delete the message the thread was started from (its id is the thread's)."""
        mid = int(thread.thread)
        seen = await self._seen("raw_message_delete", lambda event: event.message_id == mid)
        await self.fake.delete_message(mid)
        await seen
        await self.settle()

    async def _seen(self, event: str, check: Any) -> asyncio.Future[Any]:
        """A future done when the client has dispatched ``event`` (its handlers then run)."""
        seen = asyncio.ensure_future(self.client.wait_for(event, check=check, timeout=10))
        await asyncio.sleep(0)  # the listener is registered before the event is sent
        return seen

    async def bot_messages(self, thread: Thread) -> list[BotMessage]:
        await self.settle()
        return [to_bot_message(m) for m in self.fake.messages_in(int(thread.thread))]

    def llm_calls(self) -> int:
        return len(self.groq.requests)


def slash_options(
    schema: dict[str, Any], text: str, *, fake: FakeDiscord
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """What Discord sends for `/lore <text>`, following the synced command schema.

    Words pick the subcommand group and subcommand; the rest fill its options in order
    (a word naming an option, like "by", starts that option; the last text option takes
    the remaining words). A subcommand the schema lacks is sent as-is, as a stale client
    would.
    """
    words = shlex.split(text)
    top: list[dict[str, Any]] = []
    here, spec = top, schema.get("options", [])
    while words:
        match = next((o for o in spec if o["type"] in (1, 2) and o["name"] == words[0]), None)
        if match is None:
            break
        words.pop(0)
        node: dict[str, Any] = {"name": match["name"], "type": match["type"], "options": []}
        here.append(node)
        here, spec = node["options"], match.get("options", [])
        if match["type"] == 1:
            break
    if not top:
        name = words.pop(0) if words else "help"
        rest = [{"name": "text", "type": 3, "value": " ".join(words)}] if words else []
        return [{"name": name, "type": 1, "options": rest}], {}
    resolved: dict[str, Any] = {}
    for param, value in _assign([p for p in spec if p["type"] not in (1, 2)], words):
        if param["type"] == 7:
            cid = fake.channel_id(value.strip("<#>"))
            resolved.setdefault("channels", {})[str(cid)] = fake.channels[cid]
            here.append({"name": param["name"], "type": 7, "value": str(cid)})
        else:
            typed: Any = int(value) if param["type"] == 4 else value
            if param["type"] == 5:  # a boolean option: naming it turns it on
                typed = True
            here.append({"name": param["name"], "type": param["type"], "value": typed})
    return top, resolved


def _assign(params: list[dict[str, Any]], words: list[str]) -> list[tuple[dict[str, Any], str]]:
    out: list[tuple[dict[str, Any], str]] = []
    filled: set[str] = set()
    while words:
        word = words.pop(0)
        named = next((p for p in params if p["name"] == word and p["name"] not in filled), None)
        if named is not None and words:
            param, word = named, words.pop(0)
        else:
            param = next((p for p in params if p["name"] not in filled), None)
            if param is None:
                break
        rest_open = [p for p in params if p["name"] not in filled and p is not param]
        if param["type"] == 3 and not rest_open and words:
            word = " ".join([word, *words])
            words.clear()
        filled.add(param["name"])
        out.append((param, word))
    return out
