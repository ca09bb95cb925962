"""Owners who get asked: when the bot could not answer (it abstained, or someone voted 👎), the
people in the thread may put the question to the owner of the namespace the place searches.

- *Who.* The first namespace the place searches that has an owner (``/lore namespace owner``),
  when that owner is a person of the same platform and workspace. Never in a DM: the owner
  could not see it.
- *Once per thread.* The first click records the ask (``owner_asks``, one row per thread) and
  is audited; later clicks hear that the owner was asked already.
- *Suggested saves.* A member who may not save a thread ("Save thread to Lorekeeper") may
  suggest it: :meth:`OwnerService.suggest_save` names the owner to mention in the thread with
  a "Save thread" button, once per thread (a thread whose owner was asked already is not
  asked again), audited as ``suggest-save``.
- *Save when they answer.* The owner's first message in that thread makes
  :meth:`OwnerService.replied` return a :class:`SaveOffer`: the adapter offers the owner
  "Save thread", which saves it through ``UploadService.save_thread`` like the message action.

Core decides; adapters mention the owner (escaping the question) and render the buttons.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from core.context import ContextResolver, ConversationContext
from core.db.audit import AuditStore
from core.db.identity import IdentityStore
from core.db.owners import AnsweredIn, OwnerStore
from core.db.records import NamespaceRecord
from core.db.types import utcnow
from core.errors import NotEnabled
from core.types import IncomingMessage, Platform

log = logging.getLogger(__name__)

ALREADY_ASKED = "The owner of {namespace} was already asked in this thread."
NO_OWNER = "Nobody owns what this place searches, so there is no one to ask."
NOT_HERE = "I can't ask about that answer: it isn't from this workspace."
ASKED = "I asked the owner of {namespace} in the thread."
SUGGESTED = "I asked the owner of {namespace} to save this thread."
NO_OWNER_TO_SAVE = (
    "Only an admin or the namespace's owner can save a thread, and nobody owns what this "
    "place searches; ask an admin to save this one."
)


@dataclass(frozen=True, slots=True)
class OwnerCall:
    """What a click on "Ask an owner" came to: the owner to mention (platform user id) in the
    answer's thread with the question, or, with ``refusal``, words for the clicker alone."""

    channel: str = ""
    thread: str = ""
    owner: str = ""
    namespace: str = ""
    question: str = ""
    asker: str = ""
    refusal: str | None = None

    suggested: bool = False  # a suggested save, not a question

    @property
    def said(self) -> str:
        """What the clicker reads."""
        done = SUGGESTED if self.suggested else ASKED
        return self.refusal or done.format(namespace=self.namespace)


@dataclass(frozen=True, slots=True)
class SaveOffer:
    """The owner answered in a thread they were asked in: offer them "Save thread"."""

    owner: str
    channel: str
    thread: str


class OwnerService:
    def __init__(
        self,
        *,
        identity: IdentityStore,
        store: OwnerStore,
        resolver: ContextResolver,
        audit: AuditStore,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._identity = identity
        self._store = store
        self._resolver = resolver
        self._audit = audit
        self._clock = clock

    async def may_ask(
        self, *, platform: str, workspace_id: str, user_id: str, answer_id: uuid.UUID
    ) -> bool:
        """Whether ``user_id`` may still ask an owner about this answer (after a 👎)."""
        found = await self._where(platform, workspace_id, user_id, answer_id)
        if found is None:
            return False
        answered, ctx = found
        if await self._owned(ctx, answered.platform, answered.workspace) is None:
            return False
        return not await self._store.was_asked(answered.session_id)

    async def ask(
        self,
        *,
        platform: str,
        workspace_id: str,
        user_id: str,
        answer_id: uuid.UUID,
    ) -> OwnerCall:
        """Put the question of this answer's thread to the owner, once per thread."""
        found = await self._where(platform, workspace_id, user_id, answer_id)
        if found is None:
            return OwnerCall(refusal=NOT_HERE)
        answered, ctx = found
        owned = await self._owned(ctx, answered.platform, answered.workspace)
        if owned is None:
            return OwnerCall(refusal=NO_OWNER)
        namespace, owner = owned
        return await self._ask_once(
            ctx,
            answered.session_id,
            namespace,
            "ask-owner",
            answer_id=answer_id,
            call=OwnerCall(
                channel=answered.channel,
                thread=answered.thread,
                owner=owner,
                namespace=namespace.name,
                question=answered.question,
                asker=user_id,
            ),
        )

    async def suggest_save(self, message: IncomingMessage) -> OwnerCall:
        """A member who may not save the thread of ``message`` suggests it to the owner of
        what the place searches: the owner to mention in the thread (with a "Save thread"
        button), or words for the member alone."""
        try:
            ctx = await self._resolver.resolve(message)
        except NotEnabled as exc:
            return OwnerCall(refusal=exc.user_message)
        owned = await self._owned(ctx, message.platform.value, message.workspace_id)
        if owned is None:
            return OwnerCall(refusal=NO_OWNER_TO_SAVE)
        namespace, owner = owned
        return await self._ask_once(
            ctx,
            ctx.session.id,
            namespace,
            "suggest-save",
            answer_id=None,
            call=OwnerCall(
                channel=message.channel_id,
                thread=message.thread_id,
                owner=owner,
                namespace=namespace.name,
                asker=message.author_id,
                suggested=True,
            ),
        )

    async def _ask_once(
        self,
        ctx: ConversationContext,
        session_id: uuid.UUID,
        namespace: NamespaceRecord,
        command: str,
        *,
        answer_id: uuid.UUID | None,
        call: OwnerCall,
    ) -> OwnerCall:
        """Record that the thread's owner is asked (to answer ``answer_id``'s question, or
        with none to save the thread), audited as ``command`` with ``call``'s owner and
        thread: ``call`` the first time, a refusal after."""
        assert namespace.owner_id is not None
        first = await self._store.claim(
            session_id,
            answer_id=answer_id,
            owner_id=namespace.owner_id,
            asked_by=ctx.user.id,
            save_offered=answer_id is None,
        )
        arguments = {"owner": call.owner, "channel": call.channel, "thread": call.thread}
        if answer_id is not None:
            arguments["answer_id"] = str(answer_id)
        await self._audit.record(
            workspace_id=ctx.workspace.id,
            user_id=ctx.user.id,
            actor=ctx.user.external_id,
            command=command,
            arguments={"namespace": namespace.name, **arguments},
            outcome="ok" if first else "refused",
            detail=None if first else "already asked in this thread",
        )
        if not first:
            return OwnerCall(refusal=ALREADY_ASKED.format(namespace=namespace.name))
        return call

    async def suggestion_failed(self, message: IncomingMessage) -> None:
        """The suggestion for the thread of ``message`` could not be posted: forget it, so
        that a later try asks the owner (audited)."""
        asked = await self._store.asked_thread(
            message.platform.value, message.workspace_id, message.channel_id, message.thread_id
        )
        if asked is None:
            return
        await self._store.withdraw_suggestion(asked.id)
        ctx = await self._resolver.resolve(message)
        await self._audit.record(
            workspace_id=ctx.workspace.id,
            user_id=ctx.user.id,
            actor=ctx.user.external_id,
            command="suggest-save",
            arguments={"channel": message.channel_id, "thread": message.thread_id},
            outcome="failed",
            detail="the suggestion could not be posted in the thread",
        )

    async def replied(self, message: IncomingMessage) -> SaveOffer | None:
        """A :class:`SaveOffer` when ``message`` is the asked owner's first post in the thread
        they were asked in; None otherwise (most messages: one indexed read)."""
        if message.is_direct:
            return None
        asked = await self._store.asked_thread(
            message.platform.value, message.workspace_id, message.channel_id, message.thread_id
        )
        if asked is None or asked.save_offered or asked.owner != message.author_id:
            return None
        if not await self._store.offer_save(asked.id):
            return None
        return SaveOffer(message.author_id, message.channel_id, message.thread_id)

    async def _where(
        self, platform: str, workspace_id: str, user_id: str, answer_id: uuid.UUID
    ) -> tuple[AnsweredIn, ConversationContext] | None:
        answered = await self._store.answered_in(answer_id)
        if answered is None or (answered.platform, answered.workspace) != (platform, workspace_id):
            log.warning("owner ask on %s from %s %s refused", answer_id, platform, workspace_id)
            return None
        request = IncomingMessage(
            platform=Platform(platform),
            workspace_id=workspace_id,
            channel_id=answered.channel,
            thread_id=answered.thread,
            author_id=user_id,
            text="",
            event_id=f"owner:{answer_id}:{user_id}",
            received_at=self._clock(),
        )
        try:
            return answered, await self._resolver.resolve(request)
        except NotEnabled:
            return None

    async def _owned(
        self, ctx: ConversationContext, platform: str, workspace: str
    ) -> tuple[NamespaceRecord, str] | None:
        """The namespace whose owner is asked about ``ctx``'s place, and the owner's platform
        user id, when the owner is a person of this platform workspace."""
        namespace = ctx.owned
        if namespace is None or namespace.owner_id is None:
            return None
        address = await self._identity.address(namespace.owner_id)
        if address is None or (address.platform, address.workspace) != (platform, workspace):
            return None
        return namespace, address.user
