"""A fake Discord (REST API + gateway websocket) on 127.0.0.1, for the real discord.py.

    async with FakeDiscord() as fake:
        point_at(fake.api_url, fake.gateway_url)        # adapters.discord.client
        client.start("token")                          # HELLO, IDENTIFY, READY, GUILD_CREATE
        mid = await fake.user_message("C1", "U1", f"<@{fake.bot_id}> hi", mention_bot=True)
        fake.rate_limit("POST", r"/channels/\\d+/messages", retry_after=0.2)
        fake.messages_in(channel_id)                   # what the bot posted, with edits
        await fake.make_private("C9")                  # CHANNEL_UPDATE: @everyone may not view
        await fake.edit_user_message(mid, content="x") # MESSAGE_UPDATE: the full message
        await fake.delete_message(mid)                 # MESSAGE_DELETE
        await fake.delete_thread(tid)                  # THREAD_DELETE, no message deletions
        await fake.delete_channel("C2")                # CHANNEL_DELETE, nothing for its threads

Messages and interaction responses may be multipart (``payload_json`` plus ``files[n]``): the
files become attachments of the message (``payload["attachments"]``), their bytes are kept in
``fake.attachments`` (see :meth:`FakeDiscord.attachment_bytes`) and listed in ``fake.uploads``.

Shapes follow Discord's API reference. Behaviour worth knowing: a thread started from a
message gets the message's id and a second start answers 400 with code 160004; the bot's own
messages are echoed back as MESSAGE_CREATE (as Discord does); JSON responses carry exactly
``Content-Type: application/json`` and 429s carry ``Via`` (discord.py needs both). A user who
posts or clicks in the guild is its member (``GET /guilds/{id}/members/{user}`` finds them;
anyone else gets 404 Unknown Member); a DM or a DM interaction makes nobody a member.
``GET /users/{id}`` and Create DM (``POST /users/@me/channels``) find people by id; a message
to someone in ``fake.refuse_dms`` gets 403 with code 50007, as closed DMs do.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aiohttp import WSMsgType, web

API = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000
EPHEMERAL = 64
MANAGE_GUILD = 1 << 5
VIEW_CHANNEL = 1 << 10
MEMBER_PERMISSIONS = VIEW_CHANNEL | (1 << 11) | (1 << 16)  # view, send, read history
ROLE, MEMBER = 0, 1  # permission overwrite types
JsonDict = dict[str, Any]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py parses JSON only when the content type is exactly application/json.
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


@dataclass
class PostedMessage:
    """A message in a channel (by a user or the bot), its current payload and edit count."""

    payload: JsonDict
    edits: int = 0
    history: list[JsonDict] = field(default_factory=list)

    @property
    def id(self) -> int:
        return int(self.payload["id"])

    @property
    def by_bot(self) -> bool:
        return bool(self.payload["author"].get("bot"))  # by some bot (ours or another)


@dataclass
class InteractionRecord:
    id: int
    token: str
    payload: JsonDict
    callbacks: list[JsonDict] = field(default_factory=list)
    original: JsonDict | None = None  # the response message (commands)
    followups: list[JsonDict] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def invoker(self) -> JsonDict:
        """The user who acted (``member.user`` in a guild, ``user`` in a DM)."""
        return dict(self.payload.get("user") or self.payload["member"]["user"])


@dataclass
class RateLimit:
    method: str
    path: re.Pattern[str]
    times: int
    retry_after: float


class FakeDiscord:
    """One guild with text channels; users are created on first use by name."""

    def __init__(
        self, *, channels: tuple[str, ...] = ("C1", "C2"), guild_name: str = "Acme"
    ) -> None:
        self._last_id = 0
        self.application_id = self.new_id()
        self.bot_id = self.application_id
        self.guild_id = self.new_id()
        self.guild_name = guild_name
        self.bot_user: JsonDict = {
            "id": str(self.bot_id),
            "username": "lorekeeper",
            "discriminator": "0",
            "global_name": "Lorekeeper",
            "avatar": None,
            "bot": True,
        }
        self.channels: dict[int, JsonDict] = {}
        self.channel_ids: dict[str, int] = {}
        for position, name in enumerate(channels):
            self.add_channel(name, position=position)
        self.users: dict[str, JsonDict] = {}
        self.members: set[str] = set()  # users (by name) who are members of the guild
        self.roles: list[JsonDict] = [self._role(self.guild_id, "@everyone")]
        self.member_roles: dict[str, list[str]] = {}
        self.messages: dict[int, PostedMessage] = {}
        self.threads_by_message: dict[int, int] = {}
        self.attachments: dict[int, bytes] = {}
        self._attachment_meta: dict[int, JsonDict] = {}
        self.uploads: list[JsonDict] = []  # attachments the bot sent, in order
        self.interactions: dict[str, InteractionRecord] = {}
        self.commands: dict[str, list[JsonDict]] = {}
        self.requests: list[tuple[str, str]] = []
        self.bodies: list[tuple[str, str, JsonDict]] = []  # (method, path, JSON body) as sent
        self.timed_requests: list[tuple[str, str, float]] = []
        self.rate_limited: list[tuple[str, str, float]] = []
        self.identifies = 0
        self.refuse_threads = False  # answer thread creation with 403 Missing Permissions
        # people (by name) whose DMs are closed: the bot's messages to them get 403, 50007
        self.refuse_dms: set[str] = set()
        self._limits: list[RateLimit] = []
        self._socket: web.WebSocketResponse | None = None
        self._seq = 0
        self._runner: web.AppRunner | None = None
        self._port = 0
        self.last_activity = time.monotonic()
        self.ready = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._echoes: set[asyncio.Future[None]] = set()

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/attachments/{aid}/{filename}", self._attachment)
        r = app.router
        r.add_get(API + "/users/@me", self._me)
        r.add_post(API + "/users/@me/channels", self._open_dm)
        r.add_get(API + "/users/{uid}", self._get_user)
        r.add_get(API + "/oauth2/applications/@me", self._application)
        r.add_put(API + "/applications/{app}/commands", self._sync)
        r.add_put(API + "/applications/{app}/guilds/{guild}/commands", self._sync)
        r.add_get(API + "/channels/{cid}", self._get_channel)
        r.add_get(API + "/guilds/{gid}/members/{uid}", self._get_member)
        r.add_post(API + "/channels/{cid}/typing", self._typing)
        r.add_post(API + "/channels/{cid}/messages", self._post_message)
        r.add_get(API + "/channels/{cid}/messages", self._history)
        r.add_get(API + "/channels/{cid}/messages/{mid}", self._get_message)
        r.add_patch(API + "/channels/{cid}/messages/{mid}", self._edit_message)
        r.add_post(API + "/channels/{cid}/messages/{mid}/threads", self._start_thread)
        r.add_post(API + "/interactions/{iid}/{token}/callback", self._callback)
        r.add_get(API + "/webhooks/{app}/{token}/messages/{mid}", self._get_response)
        r.add_patch(API + "/webhooks/{app}/{token}/messages/{mid}", self._edit_response)
        r.add_post(API + "/webhooks/{app}/{token}", self._followup)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        await self.disconnect()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def disconnect(self) -> None:
        if self._socket is not None and not self._socket.closed:
            await self._socket.close()
        self._socket = None
        self.ready.clear()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/gateway"

    # --- the world -----------------------------------------------------------------------

    def new_id(self) -> int:
        """A snowflake made now: discord.py reads ``created_at`` from its top bits."""
        now = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last_id = max(self._last_id + 1, now)
        return self._last_id

    def add_channel(self, name: str, *, position: int = 0, private: bool = False) -> int:
        cid = self.new_id()
        self.channel_ids[name] = cid
        self.channels[cid] = {
            "id": str(cid),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": name.lower(),
            "position": position,
            "permission_overwrites": self._private_overwrites() if private else [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "rate_limit_per_user": 0,
            "last_message_id": None,
        }
        return cid

    def channel_id(self, name_or_id: str) -> int:
        return self.channel_ids[name_or_id] if name_or_id in self.channel_ids else int(name_or_id)

    def _private_overwrites(self) -> list[JsonDict]:
        """What Discord stores for a private channel: @everyone (the role whose id is the
        guild's) may not view it; the bot, by a member overwrite, may."""
        return [
            {"id": str(self.guild_id), "type": ROLE, "allow": "0", "deny": str(VIEW_CHANNEL)},
            {"id": str(self.bot_id), "type": MEMBER, "allow": str(VIEW_CHANNEL), "deny": "0"},
        ]

    async def make_private(self, name: str) -> JsonDict:
        """Deny @everyone the view of a channel and send CHANNEL_UPDATE (the channel object)."""
        channel = self.channels[self.channel_id(name)]
        channel["permission_overwrites"] = self._private_overwrites()
        await self.dispatch("CHANNEL_UPDATE", channel)
        return channel

    async def make_public(self, name: str) -> JsonDict:
        channel = self.channels[self.channel_id(name)]
        channel["permission_overwrites"] = []
        await self.dispatch("CHANNEL_UPDATE", channel)
        return channel

    def add_private_thread(self, parent: str, name: str) -> int:
        """A private thread (type 12) in a channel, known only through ``GET /channels``."""
        tid = self.new_id()
        self.channels[tid] = {
            **self._thread(tid, self.channel_id(parent), name),
            "type": 12,
            "invitable": False,
        }
        return tid

    def user(self, name: str) -> JsonDict:
        if name not in self.users:
            self.users[name] = {
                "id": str(self.new_id()),
                "username": name.lower(),
                "discriminator": "0",
                "global_name": name,
                "avatar": None,
            }
        return self.users[name]

    def add_role(
        self, name: str, *, members: tuple[str, ...] = (), permissions: int = MEMBER_PERMISSIONS
    ) -> int:
        rid = self.new_id()
        self.roles.append(self._role(rid, name, permissions))
        for member in members:
            self.member_roles.setdefault(member, []).append(str(rid))
        return rid

    def join(self, name: str) -> JsonDict:
        """Make ``name`` a member of the guild (acting in it does that too)."""
        self.members.add(name)
        return self.user(name)

    def member(self, name: str, *, permissions: int | None = None) -> JsonDict:
        data: JsonDict = {
            "user": self.user(name),
            "roles": list(self.member_roles.get(name, [])),
            "joined_at": _now(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
            "avatar": None,
            "premium_since": None,
        }
        if permissions is not None:
            data["permissions"] = str(permissions)
        return data

    def add_attachment(
        self, filename: str, data: bytes, *, content_type: str | None = None
    ) -> JsonDict:
        aid = self.new_id()
        self.attachments[aid] = data
        url = f"{self.api_url}/attachments/{aid}/{quote(filename, safe='')}"  # as the CDN does
        meta = {
            "id": str(aid),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }
        self._attachment_meta[aid] = meta
        return dict(meta)

    def attachment_bytes(self, attachment: JsonDict) -> bytes:
        """The bytes behind an attachment of a message payload."""
        return self.attachments[int(attachment["id"])]

    @staticmethod
    def _role(rid: int, name: str, permissions: int = MEMBER_PERMISSIONS) -> JsonDict:
        return {
            "id": str(rid),
            "name": name,
            "permissions": str(permissions),
            "position": 0,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }

    def _guild(self) -> JsonDict:
        return {
            "id": str(self.guild_id),
            "name": self.guild_name,
            "icon": None,
            "owner_id": str(self.user("owner")["id"]),
            "features": [],
            "roles": self.roles,
            "emojis": [],
            "stickers": [],
            "member_count": 2,
            "members": [self.member_payload_for_bot()],
            "channels": [c for c in self.channels.values() if c["type"] == 0],
            "threads": [c for c in self.channels.values() if c["type"] == 11],
            "large": False,
            "unavailable": False,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "system_channel_flags": 0,
            "nsfw_level": 0,
            "joined_at": _now(),
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
        }

    def member_payload_for_bot(self) -> JsonDict:
        return {
            "user": self.bot_user,
            "roles": [],
            "joined_at": _now(),
            "deaf": False,
            "mute": False,
            "flags": 0,
        }

    # --- what users do -------------------------------------------------------------------

    def message_payload(
        self,
        channel_id: int,
        user: str,
        content: str,
        *,
        mention_bot: bool = False,
        attachments: list[JsonDict] | None = None,
        message_id: int | None = None,
    ) -> JsonDict:
        """A MESSAGE_CREATE payload from user ``user`` in a guild channel or thread."""
        self.join(user)
        return {
            "id": str(message_id or self.new_id()),
            "channel_id": str(channel_id),
            "guild_id": str(self.guild_id),
            "author": self.user(user),
            "member": {k: v for k, v in self.member(user).items() if k != "user"},
            "content": content,
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [self.bot_user] if mention_bot else [],
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": [],
            "components": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
        }

    async def user_message(
        self,
        channel: str | int,
        user: str,
        content: str,
        *,
        mention_bot: bool = False,
        attachments: list[JsonDict] | None = None,
    ) -> JsonDict:
        cid = self.channel_id(str(channel))
        payload = self.message_payload(
            cid, user, content, mention_bot=mention_bot, attachments=attachments
        )
        self.messages[int(payload["id"])] = PostedMessage(payload)
        await self.dispatch("MESSAGE_CREATE", payload)
        return payload

    def dm_payload(
        self, user: str, content: str, *, attachments: list[JsonDict] | None = None
    ) -> JsonDict:
        """A direct message to the bot (no guild_id, no member)."""
        return {
            "id": str(self.new_id()),
            "channel_id": self._dm_channel(user)["id"],
            "author": self.user(user),
            "content": content,
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": [],
            "components": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
        }

    def dm_channel_id(self, user: str) -> int:
        return int(self._dm_channel(user)["id"])

    def _dm_channel(self, user: str) -> JsonDict:
        key = f"dm:{user}"
        if key not in self.channel_ids:
            cid = self.new_id()
            self.channel_ids[key] = cid
            self.channels[cid] = {"id": str(cid), "type": 1, "recipients": [self.user(user)]}
        return self.channels[self.channel_ids[key]]

    def command_payload(
        self,
        options: list[JsonDict],
        *,
        user: str,
        channel: str | int,
        permissions: int,
        resolved: JsonDict | None = None,
    ) -> JsonDict:
        """INTERACTION_CREATE for `/lore` with nested subcommand options."""
        cid = self.channel_id(str(channel))
        data: JsonDict = {"id": str(self.new_id()), "name": "lore", "type": 1, "options": options}
        if resolved:
            data["resolved"] = resolved
        return self._interaction(2, data, user=user, channel_id=cid, permissions=permissions)

    def message_command_payload(
        self,
        name: str,
        message: JsonDict,
        *,
        user: str,
        permissions: int = MEMBER_PERMISSIONS,
        app_permissions: int = MEMBER_PERMISSIONS,
    ) -> JsonDict:
        """INTERACTION_CREATE for a message context-menu command (application command type
        3) on ``message``: ``data.target_id`` and ``data.resolved.messages``."""
        data: JsonDict = {
            "id": str(self.new_id()),
            "name": name,
            "type": 3,
            "target_id": message["id"],
            "resolved": {"messages": {message["id"]: message}},
        }
        cid = int(message["channel_id"])
        payload = self._interaction(2, data, user=user, channel_id=cid, permissions=permissions)
        payload["app_permissions"] = str(app_permissions)
        return payload

    def click_payload(
        self,
        message: PostedMessage,
        custom_id: str,
        *,
        user: str,
        permissions: int = MEMBER_PERMISSIONS,
    ) -> JsonDict:
        """INTERACTION_CREATE for a button click on ``message``."""
        data = {"custom_id": custom_id, "component_type": 2}
        payload = self._interaction(
            3,
            data,
            user=user,
            channel_id=int(message.payload["channel_id"]),
            permissions=permissions,
        )
        payload["message"] = message.payload
        return payload

    def select_payload(
        self,
        message: PostedMessage,
        custom_id: str,
        values: list[str],
        *,
        user: str,
        permissions: int = MEMBER_PERMISSIONS,
    ) -> JsonDict:
        """INTERACTION_CREATE for a pick in a string select menu (component type 3) on
        ``message``, which may be an ephemeral interaction response: ``data.values``."""
        data = {"custom_id": custom_id, "component_type": 3, "values": values}
        payload = self._interaction(
            3,
            data,
            user=user,
            channel_id=int(message.payload["channel_id"]),
            permissions=permissions,
        )
        payload["message"] = message.payload
        return payload

    def _component_message(self, record: InteractionRecord) -> PostedMessage | None:
        """The message a component interaction came from: a channel's, or an interaction's
        response or follow-up (ephemeral ones are nowhere else)."""
        mid = int(record.payload["message"]["id"])
        if mid in self.messages:
            return self.messages[mid]
        for other in self.interactions.values():
            for shown in (other.original, *other.followups):
                if shown is not None and int(shown["id"]) == mid:
                    return PostedMessage(shown)  # edits land in the response itself
        return None

    def _interaction(
        self, kind: int, data: JsonDict, *, user: str, channel_id: int, permissions: int
    ) -> JsonDict:
        iid = self.new_id()
        token = f"tok-{iid}"
        channel = self.channels[channel_id]
        payload = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "channel_id": str(channel_id),
            "channel": channel,
            "token": token,
            "version": 1,
            "app_permissions": str(MEMBER_PERMISSIONS),
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 8 * 1024 * 1024,
        }
        if channel["type"] == 1:  # in the bot's DM: "user" instead of "member", no guild
            payload.update(user=self.user(user), context=1)
            payload["authorizing_integration_owners"] = {"0": "0"}
        else:
            self.join(user)
            payload.update(
                guild_id=str(self.guild_id),
                member=self.member(user, permissions=permissions),
                guild_locale="en-US",
                context=0,
                authorizing_integration_owners={"0": str(self.guild_id)},
            )
        self.interactions[token] = InteractionRecord(iid, token, payload)
        return payload

    async def interact(self, payload: JsonDict, *, within: float = 30.0) -> InteractionRecord:
        """Dispatch an interaction and wait until the bot has answered it."""
        record = self.interactions[payload["token"]]
        await self.dispatch("INTERACTION_CREATE", payload)
        await asyncio.wait_for(record.done.wait(), within)
        return record

    # --- what the bot did ------------------------------------------------------------------

    def messages_in(self, channel_id: int, *, bot: bool = True) -> list[PostedMessage]:
        return [
            m
            for m in self.messages.values()
            if int(m.payload["channel_id"]) == channel_id
            and (m.payload["author"]["id"] == self.bot_user["id"]) == bot
        ]

    def quiet_for(self) -> float:
        return time.monotonic() - self.last_activity

    # --- deletions ---------------------------------------------------------------------------

    async def delete_message(self, message_id: int) -> JsonDict:
        """Delete a message and send MESSAGE_DELETE (id, channel_id, guild_id in a guild)."""
        message = self.messages.pop(message_id)
        event = {"id": str(message_id), "channel_id": message.payload["channel_id"]}
        if "guild_id" in message.payload:
            event["guild_id"] = message.payload["guild_id"]
        await self.dispatch("MESSAGE_DELETE", event)
        return event

    async def bulk_delete(self, channel_id: int, message_ids: list[int]) -> JsonDict:
        """Delete messages of a guild channel at once: MESSAGE_DELETE_BULK."""
        for mid in message_ids:
            self.messages.pop(mid, None)
        event = {
            "ids": [str(m) for m in message_ids],
            "channel_id": str(channel_id),
            "guild_id": str(self.guild_id),
        }
        await self.dispatch("MESSAGE_DELETE_BULK", event)
        return event

    async def delete_thread(self, thread_id: int) -> JsonDict:
        """Delete a thread with its messages: THREAD_DELETE (id, guild_id, parent_id, type)
        and no message deletions, as Discord sends."""
        thread = self.channels.pop(thread_id)
        for mid in [
            m.id for m in self.messages.values() if m.payload["channel_id"] == str(thread_id)
        ]:
            del self.messages[mid]
        event = {k: thread[k] for k in ("id", "guild_id", "parent_id", "type")}
        await self.dispatch("THREAD_DELETE", event)
        return event

    async def delete_channel(self, name: str) -> JsonDict:
        """Delete a channel with its threads and messages: CHANNEL_DELETE (the channel
        object) and nothing for its threads, as Discord sends."""
        cid = self.channel_id(name)
        channel = self.channels.pop(cid)
        threads = {tid for tid, c in self.channels.items() if c.get("parent_id") == str(cid)}
        for tid in threads:
            del self.channels[tid]
        places = {str(cid), *(str(t) for t in threads)}
        for mid in [m.id for m in self.messages.values() if m.payload["channel_id"] in places]:
            del self.messages[mid]
        await self.dispatch("CHANNEL_DELETE", channel)
        return channel

    # --- edits -----------------------------------------------------------------------------

    async def edit_user_message(
        self, message_id: int, *, leave_out: tuple[str, ...] = (), **changes: Any
    ) -> JsonDict:
        """Edit a user's message and send MESSAGE_UPDATE: the full message object with
        ``changes`` (an author may take attachments off: ``attachments=[...]``), without the
        keys in ``leave_out``."""
        message = self.messages[message_id]
        message.payload.update(changes, edited_timestamp=_now())
        event = {k: v for k, v in message.payload.items() if k not in leave_out}
        await self.dispatch("MESSAGE_UPDATE", event)
        return event

    # --- scripting -------------------------------------------------------------------------

    def rate_limit(
        self, method: str, path: str, *, times: int = 1, retry_after: float = 0.2
    ) -> None:
        """Answer the next ``times`` matching requests (path regex, without /api/v10) with 429."""
        self._limits.append(RateLimit(method.upper(), re.compile(path), times, retry_after))

    # --- gateway ---------------------------------------------------------------------------

    async def dispatch(self, event: str, data: JsonDict) -> None:
        if self._socket is None:
            raise RuntimeError("no client is connected to the fake gateway")
        async with self._send_lock:
            self._seq += 1
            self.last_activity = time.monotonic()
            frame = {"op": 0, "t": event, "s": self._seq, "d": data}
            await self._socket.send_str(json.dumps(frame))

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(
            json.dumps({"op": 10, "d": {"heartbeat_interval": 45000}, "s": None, "t": None})
        )
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            payload = json.loads(msg.data)
            if payload["op"] == 1:
                await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
            elif payload["op"] == 2:
                await self._identify(ws)
            elif payload["op"] == 6:  # RESUME: not supported, ask for a fresh session
                await ws.send_str(json.dumps({"op": 9, "d": False, "s": None, "t": None}))
        if self._socket is ws:
            self._socket = None
        return ws

    async def _identify(self, ws: web.WebSocketResponse) -> None:
        self.identifies += 1
        self._socket = ws
        ready = {
            "v": 10,
            "user": self.bot_user,
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": f"session-{self.identifies}",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }
        await self.dispatch("READY", ready)
        await self.dispatch("GUILD_CREATE", self._guild())
        self.ready.set()

    # --- REST ------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path.removeprefix(API)
        self.requests.append((request.method, path))
        self.timed_requests.append((request.method, path, time.monotonic()))
        self.last_activity = time.monotonic()
        for limit in self._limits:
            if limit.times > 0 and limit.method == request.method and limit.path.fullmatch(path):
                limit.times -= 1
                self.rate_limited.append((request.method, path, time.monotonic()))
                body = {
                    "message": "You are being rate limited.",
                    "retry_after": limit.retry_after,
                    "global": False,
                }
                headers = {
                    "Via": "1.1 google",
                    "Retry-After": str(limit.retry_after),
                    "X-RateLimit-Scope": "user",
                }
                return _json(body, 429, headers)
        try:
            return await handler(request)
        finally:
            self.last_activity = time.monotonic()

    async def _me(self, request: web.Request) -> web.Response:
        return _json(self.bot_user)

    async def _application(self, request: web.Request) -> web.Response:
        return _json(
            {
                "id": str(self.application_id),
                "name": "Lorekeeper",
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": self.user("owner"),
                "verify_key": "0" * 64,
                "flags": 0,
            }
        )

    async def _sync(self, request: web.Request) -> web.Response:
        body = await request.json()
        scope = request.match_info.get("guild", "global")
        out = []
        for command in body:
            command = {
                "description": "",  # as Discord answers for context-menu commands
                **command,
                "id": str(self.new_id()),
                "application_id": str(self.application_id),
                "version": "1",
            }
            if scope != "global":
                command["guild_id"] = scope
            out.append(command)
        self.commands[scope] = out
        return _json(out)

    async def _get_member(self, request: web.Request) -> web.Response:
        uid = request.match_info["uid"]
        name = next((n for n in self.members if self.users[n]["id"] == uid), None)
        if request.match_info["gid"] != str(self.guild_id) or name is None:
            return _json({"message": "Unknown Member", "code": 10007}, 404)
        return _json(self.member(name))

    def _name_of(self, user_id: str) -> str | None:
        return next((n for n, u in self.users.items() if u["id"] == user_id), None)

    async def _get_user(self, request: web.Request) -> web.Response:
        name = self._name_of(request.match_info["uid"])
        if name is None:
            return _json({"message": "Unknown User", "code": 10013}, 404)
        return _json(self.users[name])

    async def _open_dm(self, request: web.Request) -> web.Response:
        """Create DM: the bot's DM channel with ``recipient_id`` (the same one every time)."""
        name = self._name_of(str((await request.json()).get("recipient_id")))
        if name is None:
            return _json({"message": "Unknown User", "code": 10013}, 404)
        return _json(dict(self._dm_channel(name), last_message_id=None))

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel = self.channels.get(int(request.match_info["cid"]))
        if channel is None:
            return _json({"message": "Unknown Channel", "code": 10003}, 404)
        return _json(channel)

    async def _typing(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def _read_body(self, request: web.Request) -> JsonDict:
        """The JSON body; for multipart, ``payload_json`` with ``files[n]`` as attachments."""
        files: dict[str, JsonDict] = {}
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            body = dict(json.loads(str(form["payload_json"])))
            for name, value in form.items():
                index = re.fullmatch(r"files\[(\d+)\]", name)
                if index and isinstance(value, web.FileField):
                    files[index.group(1)] = self.add_attachment(
                        value.filename, value.file.read(), content_type=value.content_type
                    )
            self.uploads.extend(files.values())
        else:
            body = dict(await request.json())
        sent = json.loads(json.dumps(body))  # before attachments are filled in below
        self.bodies.append((request.method, request.path.removeprefix(API), sent))
        # An interaction callback carries the message in "data"; other bodies are the message.
        message = body["data"] if "type" in body and isinstance(body.get("data"), dict) else body
        listed = message.get("attachments")
        if isinstance(listed, list):
            message["attachments"] = self._attachments(listed, files)
        elif files:
            message["attachments"] = list(files.values())
        return body

    def _attachments(self, listed: list[JsonDict], files: dict[str, JsonDict]) -> list[JsonDict]:
        """``attachments`` as sent: ``{"id": n}`` names ``files[n]``, a snowflake keeps one."""
        out = []
        for entry in listed:
            key = str(entry.get("id"))
            found = files.get(key) or (
                self._attachment_meta.get(int(key)) if key.isdigit() else None
            )
            if found is not None:
                description = entry.get("description")
                out.append({**found, **({"description": description} if description else {})})
        return out

    def _bot_message(self, channel_id: int, body: JsonDict) -> JsonDict:
        payload = {
            "id": str(self.new_id()),
            "channel_id": str(channel_id),
            "author": self.bot_user,
            "content": body.get("content") or "",
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": body.get("attachments") or [],
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "pinned": False,
            "type": 0,
            "flags": body.get("flags", 0) or 0,
        }
        if self.channels.get(channel_id, {}).get("type") != 1:
            payload["guild_id"] = str(self.guild_id)
        return payload

    async def _post_message(self, request: web.Request) -> web.Response:
        cid = int(request.match_info["cid"])
        if cid not in self.channels:
            return _json({"message": "Unknown Channel", "code": 10003}, 404)
        recipients = self.channels[cid].get("recipients") or []
        if any(self._name_of(u["id"]) in self.refuse_dms for u in recipients):
            return _json({"message": "Cannot send messages to this user", "code": 50007}, 403)
        payload = self._bot_message(cid, await self._read_body(request))
        self.messages[int(payload["id"])] = PostedMessage(payload)
        asyncio.get_running_loop().call_soon(self._echo, payload)
        return _json(payload)

    def _echo(self, payload: JsonDict) -> None:
        """Discord sends the bot its own messages too; the bot must ignore them."""
        if self._socket is not None:
            task = asyncio.ensure_future(self.dispatch("MESSAGE_CREATE", payload))
            self._echoes.add(task)
            task.add_done_callback(self._echoes.discard)

    async def _get_message(self, request: web.Request) -> web.Response:
        message = self.messages.get(int(request.match_info["mid"]))
        if message is None:
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        return _json(message.payload)

    async def _history(self, request: web.Request) -> web.Response:
        """A channel's messages, newest first: ``limit`` of them before ``before``, after
        ``after`` (the oldest that many), or the latest."""
        cid = int(request.match_info["cid"])
        if cid not in self.channels:
            return _json({"message": "Unknown Channel", "code": 10003}, 404)
        limit = min(int(request.query.get("limit", 50)), 100)
        found = sorted(
            (m for m in self.messages.values() if int(m.payload["channel_id"]) == cid),
            key=lambda m: m.id,
        )
        if "after" in request.query:
            found = [m for m in found if m.id > int(request.query["after"])][:limit]
        else:
            if "before" in request.query:
                found = [m for m in found if m.id < int(request.query["before"])]
            found = found[-limit:]
        return _json([m.payload for m in reversed(found)])

    def _apply_edit(self, message: PostedMessage, body: JsonDict) -> None:
        message.history.append(dict(message.payload))
        for key in ("content", "embeds", "components", "attachments"):
            if key in body:
                message.payload[key] = (
                    body[key] if body[key] is not None else ([] if key != "content" else "")
                )
        message.payload["edited_timestamp"] = _now()
        message.edits += 1

    async def _edit_message(self, request: web.Request) -> web.Response:
        message = self.messages.get(int(request.match_info["mid"]))
        if message is None or message.payload["author"]["id"] != self.bot_user["id"]:
            return _json(
                {"message": "Cannot edit a message authored by another user", "code": 50005}, 403
            )
        self._apply_edit(message, await self._read_body(request))
        return _json(message.payload)

    async def _start_thread(self, request: web.Request) -> web.Response:
        cid, mid = int(request.match_info["cid"]), int(request.match_info["mid"])
        if self.refuse_threads:
            return _json({"message": "Missing Permissions", "code": 50013}, 403)
        if mid in self.threads_by_message:
            return _json(
                {"message": "A thread has already been created for this message", "code": 160004},
                400,
            )
        body = await request.json()
        # a thread started from a message has the message's id
        thread = self._thread(mid, cid, body["name"], body.get("auto_archive_duration", 1440))
        self.channels[mid] = thread
        self.threads_by_message[mid] = mid
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return _json(thread, 201)

    def _thread(
        self, tid: int, parent_id: int, name: str, auto_archive_duration: int = 1440
    ) -> JsonDict:
        return {
            "id": str(tid),
            "type": 11,
            "guild_id": str(self.guild_id),
            "parent_id": str(parent_id),
            "owner_id": str(self.bot_id),
            "name": name,
            "message_count": 0,
            "member_count": 1,
            "rate_limit_per_user": 0,
            "flags": 0,
            "last_message_id": None,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": auto_archive_duration,
                "archive_timestamp": _now(),
                "locked": False,
            },
        }

    async def _attachment(self, request: web.Request) -> web.Response:
        data = self.attachments.get(int(request.match_info["aid"]))
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/octet-stream")

    # --- interactions ------------------------------------------------------------------------

    async def _callback(self, request: web.Request) -> web.Response:
        record = self.interactions.get(request.match_info["token"])
        if record is None or record.callbacks:
            return _json(
                {"message": "Interaction has already been acknowledged.", "code": 40060}, 400
            )
        body = await self._read_body(request)
        record.callbacks.append(body)
        kind, data = body["type"], body.get("data") or {}
        ephemeral = bool((data.get("flags") or 0) & EPHEMERAL)
        resource: JsonDict = {"type": kind}
        channel_id = int(record.payload["channel_id"])
        if kind in (4, 5):  # a response message (4 with content, 5 "thinking")
            record.original = self._bot_message(channel_id, data if kind == 4 else {})
            record.original["flags"] = data.get("flags") or 0
            record.original["interaction_metadata"] = {
                "id": str(record.id),
                "type": record.payload["type"],
                "user": record.invoker,
                "authorizing_integration_owners": {},
            }
            resource["message"] = record.original
        elif kind == 7 and "message" in record.payload:  # update the clicked message
            clicked = self._component_message(record)
            if clicked is None:
                return _json({"message": "Unknown Message", "code": 10008}, 404)
            self._apply_edit(clicked, data)
        if kind in (4, 7):
            record.done.set()
        response = {
            "interaction": {
                "id": str(record.id),
                "type": record.payload["type"],
                "response_message_id": record.original["id"] if record.original else None,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": ephemeral,
            },
            "resource": resource,
        }
        if request.query.get("with_response") in ("1", "true", "True"):
            return _json(response)
        return web.Response(status=204)

    def _response_target(
        self, record: InteractionRecord, mid: str
    ) -> PostedMessage | JsonDict | None:
        if mid == "@original":
            if record.original is not None:
                return record.original
            if "message" in record.payload:  # a component's @original is its message
                return self._component_message(record)
            return None
        return next((f for f in record.followups if f["id"] == mid), None)

    async def _get_response(self, request: web.Request) -> web.Response:
        record = self.interactions.get(request.match_info["token"])
        target = self._response_target(record, request.match_info["mid"]) if record else None
        if target is None:
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        return _json(target.payload if isinstance(target, PostedMessage) else target)

    async def _edit_response(self, request: web.Request) -> web.Response:
        record = self.interactions.get(request.match_info["token"])
        target = self._response_target(record, request.match_info["mid"]) if record else None
        if record is None or target is None:
            return _json({"message": "Unknown Webhook", "code": 10015}, 404)
        body = await self._read_body(request)
        if isinstance(target, PostedMessage):
            self._apply_edit(target, body)
            payload = target.payload
        else:
            for key in ("content", "embeds", "components", "attachments"):
                if key in body:
                    target[key] = body[key] if body[key] is not None else target.get(key)
            payload = target
        record.done.set()
        return _json(payload)

    async def _followup(self, request: web.Request) -> web.Response:
        record = self.interactions.get(request.match_info["token"])
        if record is None:
            return _json({"message": "Unknown Webhook", "code": 10015}, 404)
        body = await self._read_body(request)
        message = self._bot_message(int(record.payload["channel_id"]), body)
        record.followups.append(message)
        record.done.set()
        return _json(message)
