"""SlackDriver: the scenario suite's ChatDriver over signed HTTP requests to the running bot.

Events, slash commands and button clicks are POSTed to the bolt app exactly as Slack sends
them (signed, form-encoded where Slack form-encodes); what the bot shows is read back from the
fake Slack server.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from adapters.slack.actions import SAVE
from adapters.slack.app import SlackBot
from adapters.slack.render import ASK_OWNER_ACTION, OWNER_SAVE_ACTION
from bot.container import Container
from core.conversation import ConversationPipeline
from tests.fakes.groq_server import FakeGroq
from tests.fakes.slack_server import BOT_USER, FakeSlack
from tests.scenarios.driver import BotMessage, Thread

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def visible_text(message: dict[str, Any]) -> str:
    """What a person sees: every section, context and header text, else the plain text."""
    parts: list[str] = []
    for block in message.get("blocks") or []:
        if block.get("type") in ("section", "header") and block.get("text"):
            parts.append(block["text"]["text"])
        elif block.get("type") == "markdown":  # a streamed message's text
            parts.append(str(block.get("text") or ""))
        elif block.get("type") == "context":
            parts.extend(e.get("text", "") for e in block.get("elements", []))
    return "\n".join(parts) if parts else str(message.get("text") or "")


def button_block(message: dict[str, Any], action_id: str) -> dict[str, Any] | None:
    for block in message.get("blocks") or []:
        for element in block.get("elements") or []:
            if block.get("type") == "actions" and element.get("action_id") == action_id:
                return block
    return None


def bot_message(message: dict[str, Any]) -> BotMessage:
    blocks = message.get("blocks") or []
    return BotMessage(
        text=visible_text(message),
        sources=[
            b["text"]["text"]
            for b in blocks
            if str(b.get("block_id", "")).startswith("lore_source_")
        ],
        has_feedback_buttons=any(
            b.get("type") == "actions"
            and {e.get("action_id") for e in b.get("elements", [])}
            >= {"lore_feedback_up", "lore_feedback_down"}
            for b in blocks
        ),
        edits=int(message.get("edits", 0)),
    )


@dataclass
class SlackDriver:
    container: Container
    bot: SlackBot
    slack: FakeSlack
    groq: FakeGroq
    url: str  # the bot's /slack/events
    http: aiohttp.ClientSession
    secret: str = SIGNING_SECRET
    statuses: list[int] = field(default_factory=list)
    shared_files: dict[Thread, list[str]] = field(default_factory=dict)  # file ids per thread

    @property
    def conversations(self) -> ConversationPipeline:
        return self.bot._conversations  # the pipeline build_slack_bot gave the bot

    # -- raw requests --------------------------------------------------------------------------

    def signed_headers(
        self, body: str, content_type: str, *, timestamp: int | None = None
    ) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(self.secret).generate_signature(timestamp=ts, body=body)
        return {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        }

    async def post(
        self,
        body: str,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        all_headers = self.signed_headers(body, content_type) | (headers or {})
        async with self.http.post(self.url, data=body.encode(), headers=all_headers) as resp:
            self.statuses.append(resp.status)
            return resp.status, await resp.text()

    def envelope(self, event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
        return {
            "token": "XXYYZZ",
            "team_id": self.slack.team,
            "api_app_id": "A0LORE",
            "event": event,
            "type": "event_callback",
            "event_id": event_id or "Ev" + uuid.uuid4().hex[:10].upper(),
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.slack.team,
                    "user_id": BOT_USER,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-eyJldCI6ImFwcF9tZW50aW9uIn0",
        }

    async def send_event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry: int = 0
    ) -> int:
        headers = (
            {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
            if retry
            else {}
        )
        status, _ = await self.post(
            json.dumps(self.envelope(event, event_id=event_id)), headers=headers
        )
        return status

    def message_event(
        self,
        text: str,
        *,
        user: str,
        channel: str,
        ts: str | None = None,
        thread_ts: str | None = None,
        kind: str = "message",
        files: list[dict[str, Any]] | None = None,
        channel_type: str = "channel",
    ) -> dict[str, Any]:
        ts = ts or self.slack.next_ts()
        event: dict[str, Any] = {
            "type": kind,
            "user": user,
            "text": text,
            "ts": ts,
            "channel": channel,
            "event_ts": ts,
            "client_msg_id": str(uuid.uuid4()),
            "team": self.slack.team,
        }
        if kind == "message":  # as Slack types the channel: private channels are "group"
            private = channel in self.slack.private_channels or channel.startswith("G")
            event["channel_type"] = (
                "group" if private and channel_type == "channel" else channel_type
            )
        if thread_ts:
            event["thread_ts"] = thread_ts
        if files:
            event["files"] = files
            event["upload"] = False
            if kind == "message":
                event["subtype"] = "file_share"
        return event

    # -- ChatDriver ----------------------------------------------------------------------------

    async def mention(self, text: str, *, user: str = "U1", channel: str = "C1") -> Thread:
        """Slack sends a mention twice when the app also reads channel messages."""
        said = f"<@{BOT_USER}> {text}"
        event = self.message_event(said, user=user, channel=channel, kind="app_mention")
        copy = self.message_event(said, user=user, channel=channel, ts=event["ts"])
        self._keep(copy)
        await self.send_event(event)
        await self.send_event(copy)
        return Thread(channel, event["ts"])

    def _keep(self, event: dict[str, Any]) -> None:
        """A person's message stays in the channel: conversations.replies lists it."""
        kept = {k: v for k, v in event.items() if k != "channel_type"}
        self.slack.posts[(event["channel"], event["ts"])] = {
            **kept,
            "thread_ts": event.get("thread_ts") or event["ts"],
        }

    async def speak(self, text: str, *, user: str = "U1", channel: str = "C1") -> Thread:
        """A top-level channel message that does not mention the bot; the thread it would
        start."""
        event = self.message_event(text, user=user, channel=channel)
        await self.send_event(event)
        await self.bot.idle()
        return Thread(channel, event["ts"])

    def platform_writes(self) -> int:
        """Calls so far that show something: posts, edits, streams, statuses, reactions."""
        shown = ("chat.", "assistant.threads.", "reactions.", "files.")
        return sum(c.method.startswith(shown) for c in self.slack.calls)

    async def say_in_thread(
        self, thread: Thread, text: str, *, user: str = "U1", mention: bool = False
    ) -> None:
        said = f"<@{BOT_USER}> {text}" if mention else text
        copy = self.message_event(said, user=user, channel=thread.channel, thread_ts=thread.thread)
        self._keep(copy)
        if mention:
            event = dict(copy, type="app_mention")
            event.pop("channel_type", None)
            await self.send_event(event)
        await self.send_event(copy)

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
        channel = thread.channel if thread else channel
        files = [self.slack.add_file(filename, data)]
        # a new post mentions the bot (by default with words that ask nothing)
        words = "please index this" if text is None else text
        said = (text or "") if thread else f"<@{BOT_USER}> {words}"
        shared = self.message_event(
            said,
            user=user,
            channel=channel,
            thread_ts=thread.thread if thread else None,
            files=files,
        )
        if thread is None:
            mention = dict(shared, type="app_mention")
            for key in ("subtype", "channel_type", "upload"):
                mention.pop(key, None)
            await self.send_event(mention)
        await self.send_event(shared)
        # Like a person, wait for the "Indexed ..." line before going on: a search that runs
        # while the very first document is being inserted fails inside milvus-lite (a core
        # issue, see the report), which is not what the upload scenarios are about.
        await self.bot.idle()
        where = thread or Thread(channel, shared["ts"])
        self.shared_files.setdefault(where, []).append(files[0]["id"])
        return where

    def command_body(self, text: str, *, user: str, channel: str, key: str) -> dict[str, str]:
        return {
            "token": "gIkuvaNzQIHg97ATvDxqgjtO",
            "team_id": self.slack.team,
            "team_domain": "lore",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/lore",
            "text": text,
            "api_app_id": "A0LORE",
            "is_enterprise_install": "false",
            "response_url": f"{self.slack.base_url}/respond/{key}",
            "trigger_id": f"{uuid.uuid4().int % 10**13}.{uuid.uuid4().hex[:20]}",
        }

    async def command(
        self, text: str, *, user: str = "U1", channel: str = "C1", admin: bool = False
    ) -> str:
        self.slack.set_user(user, is_admin=admin)
        key = uuid.uuid4().hex
        body = urlencode(self.command_body(text, user=user, channel=channel, key=key))
        status, _ = await self.post(body, content_type="application/x-www-form-urlencoded")
        assert status == 200
        await self.bot.idle()
        return "\n".join(visible_text(r) for r in self.slack.responses[key])

    def button_payload(
        self,
        message: dict[str, Any],
        action_id: str,
        *,
        user: str,
        key: str | None = None,
        thread_ts: str | None = None,
        ephemeral: bool = False,
    ) -> dict[str, Any]:
        """A ``block_actions`` payload: ``user`` clicks our button ``action_id`` in ``message``
        (sent back with it unless ephemeral); its response_url ends in ``key``."""
        block = button_block(message, action_id)
        assert block is not None, message
        button = next(e for e in block["elements"] if e["action_id"] == action_id)
        channel = message.get("channel") or "C1"
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": self.slack.team},
            "api_app_id": "A0LORE",
            "token": "XXYYZZ",
            "container": {
                "type": "message",
                "message_ts": message.get("ts") or self.slack.next_ts(),
                "channel_id": channel,
                "is_ephemeral": ephemeral,
            },
            "trigger_id": f"{uuid.uuid4().int % 10**13}.abcdef",
            "team": {"id": self.slack.team, "domain": "lore"},
            "channel": {"id": channel, "name": "general"},
            "response_url": f"{self.slack.base_url}/respond/{key or uuid.uuid4().hex}",
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": block.get("block_id") or "b",
                    "text": button["text"],
                    "value": button["value"],
                    "type": "button",
                    "action_ts": str(time.time()),
                }
            ],
        }
        if not ephemeral:
            shown = {
                k: message[k] for k in ("type", "ts", "text", "blocks", "user") if k in message
            }
            payload["message"] = dict(shown, thread_ts=thread_ts) if thread_ts else shown
        return payload

    async def click_feedback(self, thread: Thread, value: int, *, user: str = "U1") -> None:
        await self.bot.idle()
        shown = [
            m
            for m in self.slack.thread(thread.channel, thread.thread)
            if any(b.get("type") == "actions" for b in m["blocks"])
        ]
        action = "lore_feedback_up" if value > 0 else "lore_feedback_down"
        payload = self.button_payload(shown[-1], action, user=user)
        body = urlencode({"payload": json.dumps(payload)})
        status, _ = await self.post(body, content_type="application/x-www-form-urlencoded")
        assert status == 200
        await self.bot.idle()

    async def deliver_twice(self, text: str, *, user: str = "U1", channel: str = "C1") -> Thread:
        said = f"<@{BOT_USER}> {text}"
        event = self.message_event(said, user=user, channel=channel, kind="app_mention")
        event_id = "Ev" + uuid.uuid4().hex[:10].upper()
        await asyncio.gather(
            self.send_event(event, event_id=event_id),
            self.send_event(event, event_id=event_id, retry=1),
        )
        return Thread(channel, event["ts"])

    async def bot_messages(self, thread: Thread) -> list[BotMessage]:
        await self.bot.idle()
        return [bot_message(m) for m in self.slack.thread(thread.channel, thread.thread)]

    def llm_calls(self) -> int:
        return len(self.groq.requests)

    async def click_button(
        self,
        message: dict[str, Any],
        action_id: str,
        *,
        user: str,
        thread_ts: str | None = None,
        ephemeral: bool = False,
    ) -> str:
        """A ``block_actions`` click on our button in ``message``; what came by response_url."""
        key = uuid.uuid4().hex
        payload = self.button_payload(
            message, action_id, user=user, key=key, thread_ts=thread_ts, ephemeral=ephemeral
        )
        status, _ = await self.post(
            urlencode({"payload": json.dumps(payload)}),
            content_type="application/x-www-form-urlencoded",
        )
        assert status == 200
        await self.bot.idle()
        return "\n".join(visible_text(r) for r in self.slack.responses[key])

    # -- owners and saved threads --------------------------------------------------------------

    async def make_owner(self, namespace: str, user: str) -> str:
        await self.command("namespace list", user=user)  # a person the bot knows
        return await self.command(f"namespace owner {namespace} <@{user}>", admin=True)

    async def click_ask_owner(self, thread: Thread, *, user: str) -> None:
        await self.bot.idle()
        shown = [
            m
            for m in self.slack.thread(thread.channel, thread.thread)
            if button_block(m, ASK_OWNER_ACTION) is not None
        ]
        await self.click_button(shown[-1], ASK_OWNER_ACTION, user=user, thread_ts=thread.thread)

    async def click_offered_save(self, thread: Thread, *, user: str) -> str:
        """Click "Save thread" where it was offered: in the thread (a member's suggestion),
        else to ``user`` alone (they answered a question they were asked)."""
        await self.bot.idle()
        offers = [
            e
            for e in self.slack.ephemerals
            if e.get("user") == user
            and e.get("thread_ts") == thread.thread
            and button_block(e, OWNER_SAVE_ACTION) is not None
        ]
        posted = [
            m
            for m in self.slack.thread(thread.channel, thread.thread)
            if button_block(m, OWNER_SAVE_ACTION) is not None
        ]
        if posted:
            return await self.click_button(
                posted[-1], OWNER_SAVE_ACTION, user=user, thread_ts=thread.thread
            )
        offer = {"blocks": offers[-1]["blocks"]}
        return await self.click_button(offer, OWNER_SAVE_ACTION, user=user, ephemeral=True)

    async def member_saves(self, thread: Thread, *, user: str) -> str:
        """ "Save thread to Lorekeeper" on the thread's root as a member (no dialog opens for
        them); what they were told."""
        root = dict(self.slack.posts[(thread.channel, thread.thread)], channel=thread.channel)
        return await use_shortcut(self, SAVE, root, user=user)

    async def delete_root(self, thread: Thread) -> None:
        root = self.slack.posts.pop((thread.channel, thread.thread))
        await self.send_event(
            {
                "type": "message",
                "subtype": "message_deleted",
                "hidden": True,
                "channel": thread.channel,
                "ts": self.slack.next_ts(),
                "deleted_ts": thread.thread,
                "event_ts": self.slack.next_ts(),
                "channel_type": "channel",
                "previous_message": {"type": "message", "user": root["user"], "ts": thread.thread},
            }
        )
        await self.bot.idle()

    # -- trust ---------------------------------------------------------------------------------

    async def make_private(self, channel: str) -> None:
        self.slack.private_channels.add(channel)

    async def dm(self, text: str, *, user: str = "U1") -> Thread:
        """A message in the bot's DM with ``user`` (Slack sends it as message.im, no mention)."""
        channel = self.slack.dms.setdefault(user, "D" + uuid.uuid4().hex[:10].upper())
        event = self.message_event(text, user=user, channel=channel, channel_type="im")
        await self.send_event(event)
        await self.bot.idle()
        return Thread(channel, event["ts"])

    async def delete_upload(self, thread: Thread) -> None:
        file_id = self.shared_files[thread][-1]
        await self.send_event(
            {"type": "file_deleted", "file_id": file_id, "event_ts": self.slack.next_ts()}
        )
        await self.bot.idle()

    async def click_share(self, thread: Thread, namespace: str, *, user: str = "U1") -> str:
        await self.bot.idle()
        shown = next(
            m
            for m in reversed(self.slack.thread(thread.channel, thread.thread))
            if any(b.get("block_id") == "lore_share" for b in m.get("blocks") or [])
        )
        actions = next(b for b in shown["blocks"] if b.get("block_id") == "lore_share")
        button = next(e for e in actions["elements"] if e["value"].endswith(f":{namespace}"))
        payload = self.button_payload(shown, button["action_id"], user=user)
        before = len(self.slack.ephemerals)
        body = urlencode({"payload": json.dumps(payload)})
        status, _ = await self.post(body, content_type="application/x-www-form-urlencoded")
        assert status == 200
        await self.bot.idle()
        told = [e for e in self.slack.ephemerals[before:] if e.get("user") == user]
        return "\n".join(visible_text(e) for e in told)


def shortcut_payload(
    bot: SlackDriver, callback_id: str, message: dict[str, Any], *, user: str, key: str
) -> dict[str, Any]:
    """A ``message_action`` payload, shaped like Slack's reference example."""
    chosen = {k: message[k] for k in ("type", "user", "ts", "text") if k in message}
    if message.get("thread_ts"):
        chosen["thread_ts"] = message["thread_ts"]
    if message.get("files"):
        chosen["files"] = message["files"]
    return {
        "type": "message_action",
        "token": "XXYYZZ",
        "action_ts": str(time.time()),
        "team": {"id": bot.slack.team, "domain": "lore"},
        "user": {"id": user, "username": user.lower(), "team_id": bot.slack.team},
        "channel": {"id": message["channel"], "name": "general"},
        "is_enterprise_install": False,
        "callback_id": callback_id,
        "trigger_id": bot.slack.trigger(user),
        "response_url": f"{bot.slack.base_url}/respond/{key}",
        "message_ts": message["ts"],
        "message": chosen,
    }


async def use_shortcut(
    bot: SlackDriver, callback_id: str, message: dict[str, Any], *, user: str, admin: bool = False
) -> str:
    """Invoke a shortcut on ``message``; what the bot told the invoker by response_url."""
    bot.slack.set_user(user, is_admin=admin)
    key = uuid.uuid4().hex
    payload = shortcut_payload(bot, callback_id, message, user=user, key=key)
    body = urlencode({"payload": json.dumps(payload)})
    status, _ = await bot.post(body, content_type="application/x-www-form-urlencoded")
    assert status == 200
    await bot.bot.idle()
    return "\n".join(visible_text(r) for r in bot.slack.responses[key])
