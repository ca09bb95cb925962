"""Slack's side of "Owners who get asked" (``core/owners.py`` decides; this translates).

- "Ask an owner" (``block_actions``, under an abstention or in the ephemeral offer after a 👎):
  the owner is mentioned in the answer's thread with the question; the clicker alone hears
  what happened (or that the owner was asked already).
- The owner's first post in that thread: an ephemeral "Save thread" offer (chat.postEphemeral
  in the thread); clicking it saves the thread exactly as the message shortcut does.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from adapters.slack import events, render
from adapters.slack.actions import MessageActions
from adapters.slack.events import Payload
from core.owners import SaveOffer
from core.types import Platform

if TYPE_CHECKING:
    from adapters.slack.app import SlackBot

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None], str], None]


def _clicked(body: Payload, action_id: str) -> str | None:
    """The value of our button ``action_id`` in a ``block_actions`` payload."""
    for action in body.get("actions") or ():
        if action.get("action_id") == action_id:
            return str(action.get("value") or "")
    return None


def _channel(body: Payload) -> str:
    container = body.get("container") or {}
    return str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")


class OwnerActions:
    """The "Ask an owner" and owner's "Save thread" buttons, and the owner's-answer check."""

    def __init__(self, bot: SlackBot, shortcuts: MessageActions, *, spawn: Spawn) -> None:
        self._bot = bot
        self._shortcuts = shortcuts
        self._spawn = spawn

    async def on_ask(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        self._spawn(self.ask(body), "slack-ask-owner")

    async def on_save(self, ack: Any, body: dict[str, Any], context: Any, respond: Any) -> None:
        await ack()
        job = self.save(body, respond, bot_user=context.bot_user_id, bot_id=context.bot_id)
        self._spawn(job, "slack-owner-save")

    async def ask(self, body: Payload) -> None:
        value = _clicked(body, render.ASK_OWNER_ACTION)
        try:
            answer_id = uuid.UUID(value or "")
        except ValueError:
            return
        user = str((body.get("user") or {}).get("id") or "")
        call = await self._bot.conversations.ask_owner(
            platform=Platform.SLACK.value,
            workspace_id=events.team_of(body),
            user_id=user,
            answer_id=answer_id,
        )
        if call.refusal is None:
            shown = render.owner_mention(call.owner, call.namespace, call.question)
            await self._bot.client.chat_postMessage(
                channel=call.channel, thread_ts=call.thread, text=shown.text, blocks=shown.blocks
            )
        channel = _channel(body)
        if channel:
            thread = (body.get("message") or {}).get("thread_ts") or call.thread or None
            await self._bot.client.chat_postEphemeral(
                channel=channel, user=user, thread_ts=thread, text=render.plain(call.said)
            )

    async def offer(self, offer: SaveOffer) -> None:
        """Offer the owner, who just answered in the thread, to save it (only they see it)."""
        shown = render.save_offer(offer.thread)
        await self._bot.client.chat_postEphemeral(
            channel=offer.channel,
            user=offer.owner,
            thread_ts=offer.thread,
            text=shown.text,
            blocks=shown.blocks,
        )

    async def offer_after_vote(self, body: Payload, answer_id: uuid.UUID) -> None:
        """After a 👎 where an owner may be asked: the offer, to the voter alone."""
        channel = _channel(body)
        user = str((body.get("user") or {}).get("id") or "")
        if not channel or not user:
            return
        shown = render.ask_owner_offer(answer_id)
        thread = (body.get("message") or {}).get("thread_ts")
        await self._bot.client.chat_postEphemeral(
            channel=channel, user=user, thread_ts=thread, text=shown.text, blocks=shown.blocks
        )

    async def save(
        self, body: Payload, respond: Any, *, bot_user: str | None, bot_id: str | None
    ) -> None:
        """Save the thread the offer names, as the message shortcut would for the clicker."""
        root = _clicked(body, render.OWNER_SAVE_ACTION)
        if not root:
            return
        as_shortcut = dict(body, message={"ts": root, "thread_ts": root})
        await self._shortcuts.save(as_shortcut, respond, bot_user=bot_user, bot_id=bot_id)
