"""A fake Slack Web API (and Socket Mode endpoint) on 127.0.0.1, for tests and benchmarks.

    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        slack.rate_limit("chat.postMessage", retry_after=1)   # the next call gets a 429
        file = slack.add_file("handbook.md", b"...")           # a files[] entry for an event
        slack.calls                                            # every Web API call, in order
        slack.thread("C1", "1700000000.000001")                # what a thread shows now

It serves what the Lorekeeper bot uses: auth.test, chat.postMessage, chat.update, chat.delete,
chat.startStream / chat.appendStream / chat.stopStream (``slack.refuse_streaming()`` makes
startStream answer an error, as a workspace that cannot stream does), chat.postEphemeral,
files.info, users.info, conversations.info (``private_channels``),
conversations.replies (with people's posts too: ``people_say``, ``people_post``),
conversations.open, chat.getPermalink (channels in ``outside``: the bot is no member, so
posting there answers not_in_channel),
assistant.threads.setStatus / setTitle / setSuggestedPrompts (recorded per thread in
``slack.assistant``; ``start_assistant_thread`` and ``context_changed`` make the events Slack
sends for the assistant panel; a status may go on any thread, as with the chat:write scope:
``slack.statuses`` keeps every thread's in order, ``slack.status_shown`` what shows now, which
the app's next message in the thread clears, as Slack does),
apps.connections.open, file downloads (an HTML sign-in page without the bot token, as Slack
does), the external upload flow (files.getUploadURLExternal, a POST of the bytes to the
returned upload_url, files.completeUploadExternal; finished uploads land in ``slack.uploads``),
response_url posts, and a Socket Mode WebSocket at /link.

Modals: ``slack.trigger(user)`` issues the ``trigger_id`` an interaction payload carries;
views.open takes it once, within 3 seconds (``trigger_lifetime``), and checks the modal
against Slack's limits; the opened views are in ``slack.views``, and
``slack.view_submission(view_id, picks)`` makes the payload Slack sends when it is submitted.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import WSMsgType, web

TEAM = "T0LORE"
BOT_USER = "U0BOT"
BOT_ID = "B0BOT"
LOGIN_PAGE = "<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in</body></html>"


@dataclass
class Upload:
    """A file shared through files.completeUploadExternal."""

    file_id: str
    filename: str
    title: str
    channel: str | None
    initial_comment: str | None
    data: bytes


@dataclass
class AssistantThread:
    """What the app set on one assistant thread, in order."""

    user: str
    statuses: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    prompts: list[dict[str, str]] = field(default_factory=list)
    prompts_title: str | None = None


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    token: str
    at: float = field(default_factory=time.monotonic)


class FakeSlack:
    def __init__(self, *, bot_token: str = "xoxb-test-token", app_token: str = "xapp-test") -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.team = TEAM
        self.bot_user = BOT_USER
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.ephemerals: list[dict[str, Any]] = []
        self.deleted: list[tuple[str, str]] = []
        self.responses: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.users: dict[str, dict[str, Any]] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.file_bytes: dict[str, bytes] = {}
        self.files_scope = True  # False: downloads get the sign-in page, as without files:read
        self.downloads: list[tuple[str, str]] = []  # (file id, Authorization header)
        self.dms: dict[str, str] = {}  # user id -> the bot's DM channel with them
        # channels whose conversations.info says is_private (ids may start with C, as newer
        # private channels' do); G... ids are private too, D... ids are DMs
        self.private_channels: set[str] = set()
        self.outside: set[str] = set()  # channels the bot is not a member of
        self.streaming_refusal: str | None = None  # chat.startStream's error, when set
        self.uploads: list[Upload] = []
        # people's posts (assistant threads' roots, messages in them): conversations.replies
        self.posts: dict[tuple[str, str], dict[str, Any]] = {}
        self.assistant: dict[tuple[str, str], AssistantThread] = {}
        self.statuses: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.status_shown: dict[tuple[str, str], str] = {}
        self._pending: dict[str, dict[str, Any]] = {}  # upload URLs handed out, not completed
        self.views: dict[str, dict[str, Any]] = {}  # modals opened with views.open, by id
        self.trigger_lifetime = 3.0  # seconds a trigger_id opens a view (Slack: 3)
        self._triggers: dict[str, tuple[str, float]] = {}  # unused trigger -> (user, issued)
        self._view_users: dict[str, str] = {}  # view id -> the user it was opened for
        self._limits: dict[str, list[int]] = defaultdict(list)
        self._errors: dict[str, list[str]] = defaultdict(list)
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._sockets: list[web.WebSocketResponse] = []
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.connected = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/files-pri/{file_id}/{name}", self._download)
        app.router.add_post("/respond/{key}", self._respond)
        app.router.add_post("/upload/v1/{file_id}", self._receive_upload)
        app.router.add_get("/link", self._socket)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        """Pass as ``base_url`` to the SDK (the trailing slash matters)."""
        return f"{self.base_url}/api/"

    # -- scripting -----------------------------------------------------------------------------

    def next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def rate_limit(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` get HTTP 429 with ``Retry-After``."""
        self._limits[method].extend([retry_after] * times)

    def refuse_streaming(self, error: str | None = "not_allowed") -> None:
        """Every chat.startStream answers ``{"ok": false, "error": error}`` (None: streams)."""
        self.streaming_refusal = error

    def error(self, method: str, error: str, *, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer ``{"ok": false, "error": error}``."""
        self._errors[method].extend([error] * times)

    def set_user(self, user_id: str, *, is_admin: bool = False, is_owner: bool = False) -> None:
        self.users[user_id] = {
            "id": user_id,
            "team_id": self.team,
            "name": user_id.lower(),
            "real_name": f"User {user_id}",
            "is_admin": is_admin,
            "is_owner": is_owner,
            "is_primary_owner": False,
            "is_bot": False,
        }

    def add_file(
        self, name: str, data: bytes, *, mimetype: str = "text/plain", stub: bool = False
    ) -> dict[str, Any]:
        """Store a file; returns its ``files[]`` entry (a Slack Connect stub when ``stub``)."""
        file_id = "F" + uuid.uuid4().hex[:10].upper()
        path = quote(name, safe="")  # Slack's file URLs carry the name percent-encoded
        full = {
            "id": file_id,
            "created": int(time.time()),
            "timestamp": int(time.time()),
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1],
            "user": "U1",
            "size": len(data),
            "mode": "hosted",
            "is_external": False,
            "url_private": f"{self.base_url}/files-pri/{self.team}-{file_id}/{path}",
            "url_private_download": f"{self.base_url}/files-pri/{self.team}-{file_id}/{path}",
            "permalink": f"https://lore.slack.com/files/U1/{file_id}/{path}",
        }
        self.files[file_id] = full
        self.file_bytes[file_id] = data
        if stub:
            return {"id": file_id, "mode": "file_access", "file_access": "check_file_info"}
        return dict(full)

    # -- modals --------------------------------------------------------------------------------

    def trigger(self, user: str) -> str:
        """A ``trigger_id`` for an interaction of ``user``, as a shortcut's payload carries."""
        trigger = f"{next(self._ts)}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:16]}"
        self._triggers[trigger] = (user, time.monotonic())
        return trigger

    def view_submission(
        self, view_id: str, picks: dict[str, str], *, user: str | None = None
    ) -> dict[str, Any]:
        """The ``view_submission`` payload Slack sends when the open view is submitted by
        ``user`` (by default whoever opened it): ``picks`` maps an input block's select
        ``action_id`` to the chosen option's value. A value the view does not offer makes a
        forged payload (Slack itself sends only offered ones)."""
        view = self.views[view_id]
        values: dict[str, Any] = {}
        for block in view["blocks"]:
            element = block.get("element") or {}
            if block.get("type") != "input" or element.get("action_id") not in picks:
                continue
            value = picks[element["action_id"]]
            forged = {"text": {"type": "plain_text", "text": value}, "value": value}
            option = next((o for o in element.get("options") or [] if o["value"] == value), forged)
            values[block["block_id"]] = {
                element["action_id"]: {"type": element["type"], "selected_option": option}
            }
        who = user or self._view_users[view_id]
        return {
            "type": "view_submission",
            "team": {"id": self.team, "domain": "lore"},
            "user": {"id": who, "username": who.lower(), "name": who.lower(), "team_id": self.team},
            "api_app_id": "A0LORE",
            "token": "XXYYZZ",
            "trigger_id": self.trigger(who),
            "view": {**view, "state": {"values": values}},
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }

    def _m_views_open(self, p: dict[str, Any]) -> dict[str, Any]:
        """Open a modal for the user whose interaction gave the trigger_id (once, in time)."""
        trigger = str(p.get("trigger_id") or "")
        issued = self._triggers.pop(trigger, None)
        if issued is None:
            return {"ok": False, "error": "invalid_trigger_id"}
        user, at = issued
        if time.monotonic() - at > self.trigger_lifetime:
            return {"ok": False, "error": "expired_trigger_id"}
        view = p.get("view")
        view = json.loads(view) if isinstance(view, str) else view
        problem = _modal_problem(view) if isinstance(view, dict) else "view is not an object"
        if problem is not None:
            return {
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {"messages": [f"[ERROR] {problem}"]},
            }
        view_id = "V" + uuid.uuid4().hex[:10].upper()
        opened = {
            "id": view_id,
            "team_id": self.team,
            "type": "modal",
            "blocks": view["blocks"],
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{uuid.uuid4().hex[:8]}",
            "title": view["title"],
            "close": view.get("close"),
            "submit": view.get("submit"),
            "clear_on_close": False,
            "notify_on_close": False,
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": "A0LORE",
            "external_id": "",
            "app_installed_team_id": self.team,
            "bot_id": BOT_ID,
        }
        self.views[view_id] = opened
        self._view_users[view_id] = user
        return {"view": opened}

    def methods(self, name: str) -> list[Call]:
        return [c for c in self.calls if c.method == name]

    # -- the assistant panel ------------------------------------------------------------------

    def start_assistant_thread(self, user: str, *, viewing: str | None = None) -> dict[str, Any]:
        """A person opens the app's assistant panel (beside channel ``viewing``): the thread's
        root message, and the ``assistant_thread_started`` event as Slack documents it."""
        channel = self.dms.setdefault(user, "D" + uuid.uuid4().hex[:10].upper())
        ts = self.next_ts()
        self.posts[(channel, ts)] = {
            "type": "message",
            "subtype": "assistant_app_thread",
            "user": user,
            "text": "New chat",
            "ts": ts,
            "thread_ts": ts,
            "team": self.team,
        }
        self.assistant[(channel, ts)] = AssistantThread(user)
        return {
            "type": "assistant_thread_started",
            "assistant_thread": self._assistant_thread(user, channel, ts, viewing),
            "event_ts": self.next_ts(),
        }

    def context_changed(self, channel: str, thread_ts: str, *, viewing: str) -> dict[str, Any]:
        """The person moved to channel ``viewing`` with the panel open."""
        user = self.assistant[(channel, thread_ts)].user
        return {
            "type": "assistant_thread_context_changed",
            "assistant_thread": self._assistant_thread(user, channel, thread_ts, viewing),
            "event_ts": self.next_ts(),
        }

    def people_say(self, channel: str, thread_ts: str, text: str, *, user: str) -> dict[str, Any]:
        """A person's message in a DM thread: kept for conversations.replies; returns the
        ``message`` event (channel_type ``im``) Slack sends for it."""
        ts = self.next_ts()
        event = {
            "type": "message",
            "user": user,
            "text": text,
            "ts": ts,
            "thread_ts": thread_ts,
            "parent_user_id": user,
            "channel": channel,
            "channel_type": "im",
            "event_ts": ts,
            "client_msg_id": str(uuid.uuid4()),
            "team": self.team,
        }
        self.posts[(channel, ts)] = {k: v for k, v in event.items() if k != "channel_type"}
        return event

    def people_post(
        self, channel: str, text: str, *, user: str, thread_ts: str | None = None
    ) -> dict[str, Any]:
        """A person's message in a channel (a thread's root, or a reply in ``thread_ts``):
        kept for conversations.replies; returns its ``message`` event."""
        ts = self.next_ts()
        event = {
            "type": "message",
            "user": user,
            "text": text,
            "ts": ts,
            "channel": channel,
            "channel_type": "channel",
            "event_ts": ts,
            "client_msg_id": str(uuid.uuid4()),
            "team": self.team,
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        # a root lists as its own thread's first message
        self.posts[(channel, ts)] = {
            **{k: v for k, v in event.items() if k != "channel_type"},
            "thread_ts": thread_ts or ts,
        }
        return event

    def _m_chat_getPermalink(self, p: dict[str, Any]) -> dict[str, Any]:
        channel, ts = p.get("channel"), str(p.get("message_ts") or "").replace(".", "")
        return {"channel": channel, "permalink": f"https://lore.slack.com/archives/{channel}/p{ts}"}

    def _assistant_thread(
        self, user: str, channel: str, ts: str, viewing: str | None
    ) -> dict[str, Any]:
        context = {"channel_id": viewing, "team_id": self.team, "enterprise_id": None}
        return {
            "user_id": user,
            "context": context if viewing else {},
            "channel_id": channel,
            "thread_ts": ts,
        }

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """Bot messages in a thread (the parent's replies), oldest first."""
        return sorted(
            (
                m
                for (ch, _), m in self.messages.items()
                if ch == channel and m.get("thread_ts") == thread_ts
            ),
            key=lambda m: m["ts"],
        )

    # -- Socket Mode ---------------------------------------------------------------------------

    async def send_envelope(
        self, kind: str, payload: dict[str, Any], *, retry_attempt: int = 0, wait: float = 5
    ) -> dict[str, Any]:
        """Push an envelope to the connected client; returns its acknowledgement."""
        await asyncio.wait_for(self.connected.wait(), wait)
        envelope_id = str(uuid.uuid4())
        done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = done
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
        }
        await self._sockets[-1].send_str(json.dumps(envelope))
        return await asyncio.wait_for(done, wait)

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1}))
        self.connected.set()
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            future = self._acks.pop(str(data.get("envelope_id")), None)
            if future is not None and not future.done():
                future.set_result(data)
        self._sockets.remove(ws)
        if not self._sockets:
            self.connected.clear()
        return ws

    # -- HTTP handlers -------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update(dict(await request.post()))
        for key in ("blocks", "attachments"):
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        return params

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        token = token or str(params.get("token", ""))
        self.calls.append(Call(method, params, token))
        if self._limits[method]:
            retry_after = self._limits[method].pop(0)
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(retry_after)},
            )
        if self._errors[method]:
            return web.json_response({"ok": False, "error": self._errors[method].pop(0)})
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        return web.json_response({"ok": True, **handler(params)})

    def _m_auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://lore.slack.com/",
            "team": "Lore",
            "user": "lorekeeper",
            "team_id": self.team,
            "user_id": BOT_USER,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        if p["channel"] in self.outside:
            return {"ok": False, "error": "not_in_channel"}
        ts = self.next_ts()
        message = {
            "type": "message",
            "channel": p["channel"],
            "ts": ts,
            "thread_ts": p.get("thread_ts") or None,
            "text": p.get("text", ""),
            "blocks": p.get("blocks") or [],
            "user": BOT_USER,
            "bot_id": BOT_ID,
            "edits": 0,
            "posted_at": time.monotonic(),
        }
        if p.get("metadata"):
            message["metadata"] = p["metadata"]
        self.messages[(p["channel"], ts)] = message
        self.status_shown.pop((p["channel"], str(p.get("thread_ts"))), None)
        return {"channel": p["channel"], "ts": ts, "message": _public(message)}

    def _m_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        message = self.messages.get((p["channel"], p["ts"]))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message["text"] = p.get("text", message["text"])
        if "blocks" in p:
            message["blocks"] = p.get("blocks") or []
        if p.get("metadata"):
            message["metadata"] = p["metadata"]
        message["edits"] += 1
        message["updated_at"] = time.monotonic()
        return {"channel": p["channel"], "ts": p["ts"], "text": message["text"]}

    def _m_chat_delete(self, p: dict[str, Any]) -> dict[str, Any]:
        if self.messages.pop((p["channel"], p["ts"]), None) is None:
            return {"ok": False, "error": "message_not_found"}
        self.deleted.append((p["channel"], p["ts"]))
        return {"channel": p["channel"], "ts": p["ts"]}

    def _m_chat_startStream(self, p: dict[str, Any]) -> dict[str, Any]:
        """A thread reply that streams; outside DMs Slack wants the recipient's team and user."""
        if self.streaming_refusal:
            return {"ok": False, "error": self.streaming_refusal}
        if not p.get("thread_ts"):
            return {"ok": False, "error": "invalid_arguments"}
        if not str(p["channel"]).startswith("D"):
            for key in ("recipient_team_id", "recipient_user_id"):
                if not p.get(key):
                    return {"ok": False, "error": f"missing_{key}"}
        ts = self.next_ts()
        message = {
            "type": "message",
            "channel": p["channel"],
            "ts": ts,
            "thread_ts": p["thread_ts"],
            "text": "",
            "blocks": [],
            "user": BOT_USER,
            "bot_id": BOT_ID,
            "edits": 0,
            "posted_at": time.monotonic(),
            "streaming": True,
            "stream_chunks": [],
        }
        self.messages[(p["channel"], ts)] = message
        self.status_shown.pop((p["channel"], str(p["thread_ts"])), None)
        _stream_into(message, p)
        return {"channel": p["channel"], "ts": ts}

    def _m_chat_appendStream(self, p: dict[str, Any]) -> dict[str, Any]:
        message = self.messages.get((p["channel"], p["ts"]))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        if not message.get("streaming"):
            return {"ok": False, "error": "message_not_in_streaming_state"}
        if not _stream_into(message, p):
            return {"ok": False, "error": "no_text"}
        message["edits"] += 1
        return {"channel": p["channel"], "ts": p["ts"]}

    def _m_chat_stopStream(self, p: dict[str, Any]) -> dict[str, Any]:
        """The last text, then ``blocks`` rendered under the streamed text."""
        message = self.messages.get((p["channel"], p["ts"]))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        if not message.get("streaming"):
            return {"ok": False, "error": "message_not_in_streaming_state"}
        _stream_into(message, p)
        message["streaming"] = False
        message["blocks"] = [*message["blocks"], *(p.get("blocks") or [])]
        message["edits"] += 1
        message["updated_at"] = time.monotonic()
        return {"channel": p["channel"], "ts": p["ts"], "message": _public(message)}

    def _m_chat_postEphemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        self.ephemerals.append(p)
        return {"message_ts": self.next_ts()}

    def _m_users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        user_id = str(p.get("user"))
        if user_id not in self.users:
            self.set_user(user_id)
        return {"user": self.users[user_id]}

    def _m_files_info(self, p: dict[str, Any]) -> dict[str, Any]:
        file = self.files.get(str(p.get("file")))
        return {"file": file} if file else {"ok": False, "error": "file_not_found"}

    def _m_conversations_replies(self, p: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(p["channel"]), str(p["ts"])
        if channel in self.outside:
            return {"ok": False, "error": "not_in_channel"}
        people = [m for (ch, _), m in self.posts.items() if ch == channel and m["thread_ts"] == ts]
        replies = sorted([*self.thread(channel, ts), *people], key=lambda m: m["ts"])
        limit = int(p.get("limit") or 1000)
        shown = [
            {
                k: v
                for k, v in _public(m).items()
                if k != "metadata" or p.get("include_all_metadata")
            }
            for m in replies[:limit]
        ]
        return {"messages": shown, "has_more": len(replies) > limit}

    def _assistant_call(self, p: dict[str, Any]) -> AssistantThread | dict[str, Any]:
        thread = self.assistant.get((str(p.get("channel_id")), str(p.get("thread_ts"))))
        return thread if thread is not None else {"ok": False, "error": "invalid_thread_ts"}

    def _m_assistant_threads_setStatus(self, p: dict[str, Any]) -> dict[str, Any]:
        key = (str(p.get("channel_id") or ""), str(p.get("thread_ts") or ""))
        if not all(key):
            return {"ok": False, "error": "invalid_arguments"}
        status = str(p.get("status", ""))
        thread = self.assistant.get(key)
        if thread is not None:
            thread.statuses.append(status)
        self.statuses[key].append(status)
        if status:
            self.status_shown[key] = status
        else:
            self.status_shown.pop(key, None)
        return {}

    def _m_assistant_threads_setTitle(self, p: dict[str, Any]) -> dict[str, Any]:
        thread = self._assistant_call(p)
        if isinstance(thread, dict):
            return thread
        thread.titles.append(str(p.get("title", "")))
        return {}

    def _m_assistant_threads_setSuggestedPrompts(self, p: dict[str, Any]) -> dict[str, Any]:
        thread = self._assistant_call(p)
        if isinstance(thread, dict):
            return thread
        prompts = p.get("prompts")
        if isinstance(prompts, str):
            prompts = json.loads(prompts)
        if not isinstance(prompts, list) or not 0 < len(prompts) <= 4:
            return {"ok": False, "error": "invalid_arguments"}
        if any(not (q.get("title") and q.get("message")) for q in prompts):
            return {"ok": False, "error": "invalid_arguments"}
        thread.prompts = prompts
        thread.prompts_title = p.get("title")
        return {}

    def _m_conversations_info(self, p: dict[str, Any]) -> dict[str, Any]:
        """As Slack's reference shows it: the conversation object with its is_* flags."""
        channel = str(p.get("channel") or "")
        if channel[:1] not in ("C", "G", "D"):
            return {"ok": False, "error": "channel_not_found"}
        if channel.startswith("D"):
            user = next((u for u, d in self.dms.items() if d == channel), "U0")
            return {
                "channel": {
                    "id": channel,
                    "created": 1700000000,
                    "is_im": True,
                    "is_org_shared": False,
                    "user": user,
                    "is_user_deleted": False,
                }
            }
        private = channel.startswith("G") or channel in self.private_channels
        return {
            "channel": {
                "id": channel,
                "name": channel.lower(),
                "is_channel": not private,
                "is_group": private,
                "is_im": False,
                "is_mpim": False,
                "is_private": private,
                "created": 1700000000,
                "is_archived": False,
                "is_general": False,
                "is_shared": False,
                "is_org_shared": False,
                "is_member": channel not in self.outside,
                "num_members": 4,
            }
        }

    def _m_conversations_open(self, p: dict[str, Any]) -> dict[str, Any]:
        users = [u for u in str(p.get("users") or "").split(",") if u]
        if len(users) != 1:  # group DMs are not faked
            return {"ok": False, "error": "users_list_not_supplied"}
        channel = self.dms.setdefault(users[0], "D" + uuid.uuid4().hex[:10].upper())
        return {"channel": {"id": channel, "is_im": True, "user": users[0]}}

    def _m_files_getUploadURLExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("filename") or not str(p.get("length") or "").isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = "F" + uuid.uuid4().hex[:10].upper()
        self._pending[file_id] = {"filename": str(p["filename"]), "length": int(p["length"])}
        return {"upload_url": f"{self.base_url}/upload/v1/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        entries = json.loads(str(p.get("files") or "[]"))
        pending = [self._pending.get(str(e.get("id"))) for e in entries]
        if not entries or any(f is None or "data" not in f for f in pending):
            return {"ok": False, "error": "file_not_found"}
        shared = []
        channel = str(p["channel_id"]) if p.get("channel_id") else None
        for entry, upload in zip(entries, pending, strict=True):
            assert upload is not None
            file_id = str(entry["id"])
            del self._pending[file_id]
            title = str(entry.get("title") or upload["filename"])
            self.uploads.append(
                Upload(
                    file_id,
                    upload["filename"],
                    title,
                    channel,
                    p.get("initial_comment"),
                    upload["data"],
                )
            )
            shared.append({"id": file_id, "title": title, "name": upload["filename"]})
        return {"files": shared}

    def _m_apps_connections_open(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"url": f"ws://127.0.0.1:{self._port}/link"}

    async def _download(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"].split("-", 1)[-1]
        auth = request.headers.get("Authorization", "")
        self.downloads.append((file_id, auth))
        if not self.files_scope or auth != f"Bearer {self.bot_token}":
            return web.Response(text=LOGIN_PAGE, content_type="text/html")
        file = self.files.get(file_id)
        if file is None:
            return web.Response(status=404)
        return web.Response(body=self.file_bytes[file_id], content_type=file["mimetype"])

    async def _receive_upload(self, request: web.Request) -> web.Response:
        """The upload_url: Slack answers ``OK - <bytes>`` in plain text."""
        upload = self._pending.get(request.match_info["file_id"])
        data = await request.read()
        if upload is None:
            return web.Response(status=404, text="upload_url_invalid")
        if len(data) != upload["length"]:
            return web.Response(status=400, text="length_mismatch")
        upload["data"] = data
        return web.Response(text=f"OK - {len(data)}")

    async def _respond(self, request: web.Request) -> web.Response:
        self.responses[request.match_info["key"]].append(await request.json())
        return web.Response(text="ok")


def _modal_problem(view: dict[str, Any]) -> str | None:
    """What Slack's reference says a modal may not be, checked for the parts the bot uses:
    title, submit and close at most 24 characters, 100 blocks, 3,000 characters of
    private_metadata, a submit button with input blocks, and static_selects of at most 100
    options (text 75 characters, value 150) whose initial_option is one of them."""
    if view.get("type") != "modal":
        return "view type must be modal"
    for key in ("title", "submit", "close"):
        text = (view.get(key) or {}).get("text", "")
        if (key == "title" or key in view) and not 0 < len(text) <= 24:
            return f"{key} must be 1-24 characters"
    blocks = view.get("blocks") or []
    if not 0 < len(blocks) <= 100:
        return "a view has 1-100 blocks"
    if len(str(view.get("private_metadata") or "")) > 3000:
        return "private_metadata is at most 3000 characters"
    for block in blocks:
        if block.get("type") != "input":
            continue
        if "submit" not in view:
            return "a view with input blocks needs submit"
        element = block.get("element") or {}
        if element.get("type") != "static_select":
            continue
        options = element.get("options") or []
        if not 0 < len(options) <= 100:
            return "a static_select has 1-100 options"
        if any(len(o["text"]["text"]) > 75 or len(o["value"]) > 150 for o in options):
            return "an option's text is at most 75 characters, its value 150"
        if "initial_option" in element and element["initial_option"] not in options:
            return "initial_option must be one of the options"
    return None


def _public(message: dict[str, Any]) -> dict[str, Any]:
    hidden = ("edits", "posted_at", "updated_at", "streaming", "stream_chunks")
    return {k: v for k, v in message.items() if k not in hidden}


def _stream_into(message: dict[str, Any], p: dict[str, Any]) -> bool:
    """Append a stream call's markdown (``markdown_text`` or markdown_text ``chunks``, as the
    SDK's helper sends it) to the message: its text, and one markdown block showing it."""
    texts = [str(p["markdown_text"])] if p.get("markdown_text") else []
    chunks = p.get("chunks") or []
    if isinstance(chunks, str):
        chunks = json.loads(chunks)
    texts += [str(c.get("text") or "") for c in chunks if c.get("type") == "markdown_text"]
    texts = [t for t in texts if t]
    if not texts:
        return False
    message["stream_chunks"].extend(texts)
    message["text"] += "".join(texts)
    message["blocks"] = [b for b in message["blocks"] if b.get("type") != "markdown"]
    message["blocks"].insert(0, {"type": "markdown", "text": message["text"]})
    return True
