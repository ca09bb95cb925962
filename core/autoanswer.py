"""Channels that answer themselves: whether to answer a question nobody addressed to the bot.

In a channel where an admin turned it on (``/lore channel autoanswer on``), a top-level
message that asks something is answered in its thread without a mention, but only when the
evidence gate (:mod:`core.generation.gate`) is confident at a stricter level than for a
mention (:data:`DEFAULT_AUTOANSWER_THRESHOLD`, measured by ``bench/autoanswer.py``); otherwise
nothing at all is shown. The decision comes first, from retrieval and the gate alone, so no
placeholder or status appears for a message left alone. At most ``limit`` questions per
``window`` are answered in one channel, counted from the stored decisions (every replica
agrees).

Each decision is stored. The pipeline asks for one only for a message that asks something
(``core.conversation.asks``), and a question left alone because the sources did not answer it
(``unsure``, ``no knowledge``) is kept with its text and thread: a gap, in the gap reports
beside the refused questions (``core.db.gaps``), deleted by the retention job as messages are.
Other decisions keep no text: an answered question is stored with its answer, and one left
alone by the rate limit says nothing of the documents. A decision to answer carries its search
(:class:`~core.search.Searched`) to the answer, which then does not retrieve the question again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.context import ContextResolver, strictest_threshold
from core.db.autoanswer import AutoAnswerStore
from core.db.types import utcnow
from core.errors import NotEnabled
from core.generation.gate import answer_probability
from core.retrieval.retriever import Retriever
from core.search import Searched, weigh
from core.types import IncomingMessage

log = logging.getLogger(__name__)

# decisions whose question is a gap: the sources did not answer it
_GAPS = frozenset({"unsure", "no knowledge"})

# The gate's estimate an unasked question needs (a mention needs DEFAULT_THRESHOLD, 0.18):
# on bench/autoanswer.py's mixed stream it keeps the bot silent on all the chit-chat and on
# most unanswerable questions while still answering most answerable ones.
DEFAULT_AUTOANSWER_THRESHOLD = 0.60


@dataclass(frozen=True, slots=True)
class AutoAnswerConfig:
    threshold: float = DEFAULT_AUTOANSWER_THRESHOLD
    limit: int | None = 5  # answers per channel per window (None: no limit)
    window: timedelta = timedelta(minutes=10)
    top_k: int = 5


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether to answer an unaddressed message, and why (``reason``: ``confident``,
    ``unsure``, ``rate``, ``no knowledge``, ``off``, ``not top-level``); a decision to
    answer carries the search it was taken on, for the answer to reuse."""

    answer: bool
    reason: str
    probability: float | None = None
    searched: Searched | None = None


@dataclass(frozen=True, slots=True)
class _Judged:
    probability: float | None  # None: nothing to search, or nothing found
    floor: float  # the strictest threshold of the namespaces searched
    searched: Searched | None


def top_level(message: IncomingMessage) -> bool:
    """A channel message that starts a thread (not a reply, not a DM, no files)."""
    return (
        not message.is_direct
        and not message.files
        and bool(message.text)
        and message.message_id is not None
        and message.thread_id == message.message_id
    )


class AutoAnswerService:
    """Decides on unaddressed questions in autoanswer channels (:meth:`decide`)."""

    def __init__(
        self,
        *,
        store: AutoAnswerStore,
        resolver: ContextResolver,
        retriever: Retriever,
        config: AutoAnswerConfig | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._resolver = resolver
        self._retriever = retriever
        self._config = config or AutoAnswerConfig()
        self._clock = clock
        # the rate check and the decision's row go together, so that questions arriving at
        # once in one channel cannot all pass the last free place
        self._deciding = asyncio.Lock()

    @property
    def config(self) -> AutoAnswerConfig:
        return self._config

    async def decide(self, message: IncomingMessage) -> Decision:
        """Answer ``message`` (a message that asks something) unasked? Stores the decision
        when the channel has autoanswer on, with the question's text when it is a gap; shows
        nothing. Raises only for unexpected failures (the caller stays silent)."""
        if not top_level(message):
            return Decision(False, "not top-level")
        channel_id = await self._store.channel_on(
            message.platform.value, message.workspace_id, message.channel_id
        )
        if channel_id is None:
            return Decision(False, "off")
        if await self._over_rate(channel_id):
            return await self._record(channel_id, message, Decision(False, "rate"))
        try:
            judged = await self._judge(message)
        except NotEnabled:
            return Decision(False, "off")
        p = judged.probability
        if p is None:
            return await self._record(channel_id, message, Decision(False, "no knowledge"))
        if p < max(self._config.threshold, judged.floor):
            return await self._record(channel_id, message, Decision(False, "unsure", p))
        async with self._deciding:
            if await self._over_rate(channel_id):
                return await self._record(channel_id, message, Decision(False, "rate", p))
            decision = Decision(True, "confident", p, judged.searched)
            return await self._record(channel_id, message, decision)

    async def probability(self, message: IncomingMessage) -> float | None:
        """The gate's estimate that the sources readable where ``message`` is answer it (None:
        nothing to search); what :meth:`decide` compares with the threshold."""
        return (await self._judge(message)).probability

    async def _judge(self, message: IncomingMessage) -> _Judged:
        place = await self._resolver.place(message)
        namespaces = await self._resolver.places.readable(place)
        if not namespaces:
            return _Judged(None, 0.0, None)
        retrieval = await self._retriever.search(
            message.text,
            workspace_id=tuple(dict.fromkeys(n.workspace_id for n in namespaces)),
            namespace_ids=[n.id for n in namespaces],
            limit=self._config.top_k,
        )
        _, _, signals = await weigh(self._retriever, message.text, retrieval)
        searched = Searched(
            message.text, frozenset(n.id for n in namespaces), self._config.top_k, retrieval
        )
        return _Judged(
            None if signals is None else answer_probability(signals),
            strictest_threshold(namespaces) or 0.0,
            searched,
        )

    async def _over_rate(self, channel_id: uuid.UUID) -> bool:
        limit = self._config.limit
        if limit is None:
            return False
        since = self._clock() - self._config.window
        return await self._store.answered_since(channel_id, since) >= limit

    async def _record(
        self, channel_id: uuid.UUID, message: IncomingMessage, decision: Decision
    ) -> Decision:
        gap = decision.reason in _GAPS
        await self._store.record(
            channel_id,
            answered=decision.answer,
            probability=decision.probability,
            reason=decision.reason,
            at=self._clock(),
            question=message.text if gap else None,
            thread_key=message.thread_id if gap else None,
        )
        shown = "-" if decision.probability is None else f"{decision.probability:.2f}"
        log.info("autoanswer %s p=%s", decision.reason, shown)
        return decision
