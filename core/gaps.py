"""Gap reports: the questions the bot could not answer, grouped by meaning.

A question is a gap when its answer abstained or was voted down more than up. Gaps are
grouped by the cosine similarity of their embeddings (average linkage: two groups join while
their questions are, on average, at least ``GapConfig.threshold`` alike), so "how many vacation
days" and "PTO allowance?" make one row. A group is settled, and left out, once a question as
alike as that, asked after the group's last one, was answered and voted 👍, or was answered and
not voted down for ``GapConfig.settle``.

A question belongs to the namespaces its channel searches: the ones bound to it, or
``general`` for a channel (or DM) bound to none. ``core/digest.py`` sends owners a weekly
summary of their namespaces.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from core.db.gaps import AskedQuestion, GapStore
from core.db.knowledge import KnowledgeStore
from core.db.namespaces import DEFAULT_NAMESPACE
from core.db.records import NamespaceRecord
from core.db.types import utcnow
from core.retrieval.base import Embedder

log = logging.getLogger(__name__)

# The threshold with the best pairwise F1 of bench/gap_grouping.py (docs/benchmarks.md); with
# all-MiniLM-L6-v2 rewordings of one question are alike at 0.8-0.95, while synonyms the model
# does not know ("vacation days" and "PTO") stay near 0.2 and are not grouped.
DEFAULT_THRESHOLD = 0.7
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,80}$")


@dataclass(frozen=True, slots=True)
class GapConfig:
    threshold: float = DEFAULT_THRESHOLD
    settle: timedelta = timedelta(days=3)  # answered and not voted down this long: settled
    max_gaps: int = 500  # the newest refused questions a report groups
    max_answered: int = 1000  # the newest answered questions that may settle a group


@dataclass(frozen=True, slots=True)
class Place:
    """Where a question was asked: a channel by its platform id (and name)."""

    id: str
    name: str | None


@dataclass(frozen=True, slots=True)
class GapGroup:
    """One row of a report: the newest wording, how often it was asked, when last, where,
    and a link to the newest question's thread (None where the platform has no such link)."""

    question: str
    count: int
    last_asked: datetime
    places: tuple[Place, ...]
    link: str | None
    wordings: tuple[str, ...] = ()  # other ways it was asked (up to three)

    def as_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "count": self.count,
            "last_asked": self.last_asked.isoformat(),
            "places": [{"id": p.id, "name": p.name} for p in self.places],
            "link": self.link,
            "wordings": list(self.wordings),
        }


@dataclass(frozen=True, slots=True)
class GapReport:
    since: datetime
    until: datetime
    groups: tuple[GapGroup, ...] = ()
    namespaces: tuple[str, ...] = ()  # the namespaces it covers (empty: the whole workspace)

    @property
    def questions(self) -> int:
        return sum(g.count for g in self.groups)

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "namespaces": list(self.namespaces),
            "groups": [g.as_json() for g in self.groups],
        }


def group_by_meaning(vectors: Sequence[Sequence[float]], threshold: float) -> list[list[int]]:
    """Average-linkage clustering of unit vectors: the indices of each group, in the order of
    their first member. Two groups join while their mean pairwise cosine is ``threshold``
    or more (the most alike pair of groups first)."""
    n = len(vectors)
    if n == 0:
        return []
    x = np.asarray(vectors, dtype=np.float32)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    sizes = np.ones(n)
    members: list[list[int]] = [[i] for i in range(n)]
    alive = np.ones(n, dtype=bool)
    while True:
        flat = int(np.argmax(sim))
        i, j = divmod(flat, n)
        if sim[i, j] < threshold:
            break
        i, j = min(i, j), max(i, j)
        merged = (sim[i] * sizes[i] + sim[j] * sizes[j]) / (sizes[i] + sizes[j])
        sim[i], sim[:, i] = merged, merged
        sim[i, i] = -np.inf
        sim[j], sim[:, j] = -np.inf, -np.inf
        sizes[i] += sizes[j]
        members[i] += members[j]
        alive[j] = False
    return [sorted(members[i]) for i in range(n) if alive[i]]


def thread_url(q: AskedQuestion) -> str | None:
    """A link that opens the question's thread on its platform (ids checked: they come from
    events)."""
    ids = (q.workspace, q.channel, q.thread)
    if not all(_SAFE_ID.match(i) for i in ids):
        return None
    if q.platform == "slack":
        return (
            f"https://app.slack.com/client/{q.workspace}/{q.channel}/thread/{q.channel}-{q.thread}"
        )
    if q.platform == "discord":
        return f"https://discord.com/channels/{q.workspace}/{q.thread}"
    return None


class GapService:
    """Builds gap reports from the stored questions, embedding them with the container's
    embedder."""

    def __init__(
        self,
        *,
        store: GapStore,
        knowledge: KnowledgeStore,
        embedder: Embedder,
        config: GapConfig | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._knowledge = knowledge
        self._embedder = embedder
        self._config = config or GapConfig()
        self._clock = clock

    async def report(
        self,
        *,
        since: datetime,
        until: datetime,
        workspace_id: uuid.UUID | None,
        namespaces: Sequence[NamespaceRecord] | None = None,
    ) -> GapReport:
        """The gaps asked in ``[since, until)``: of ``workspace_id`` (None: every workspace),
        or, with ``namespaces``, of the channels that search them."""
        channels = await self._channels(namespaces) if namespaces is not None else None
        cfg, ws = self._config, workspace_id
        refused = await self._store.refused(
            since=since, until=until, workspace_id=ws, channel_ids=channels, limit=cfg.max_gaps
        )
        names = tuple(n.name for n in namespaces or ())
        if not refused:
            return GapReport(since, until, (), names)
        settling = await self._store.answered(
            since=since, workspace_id=ws, channel_ids=channels, limit=cfg.max_answered
        )
        settled_by = [q for q in settling if self._settles(q)]
        groups = await self._groups(refused, settled_by)
        return GapReport(since, until, tuple(groups), names)

    def _settles(self, q: AskedQuestion) -> bool:
        if q.ups > q.downs:
            return True
        return q.downs == 0 and q.asked_at <= self._clock() - self._config.settle

    async def _channels(self, namespaces: Sequence[NamespaceRecord]) -> list[uuid.UUID]:
        channels = await self._store.channels_of([n.id for n in namespaces])
        for ns in namespaces:
            if ns.name == DEFAULT_NAMESPACE and not ns.is_conversation:
                channels += await self._store.unbound_channels(ns.workspace_id)
        return channels

    async def _groups(
        self, refused: Sequence[AskedQuestion], settling: Sequence[AskedQuestion]
    ) -> list[GapGroup]:
        texts = [q.text for q in (*refused, *settling)]
        vectors = await self._embedder.embed_documents(texts)
        threshold = self._config.threshold
        clusters = await asyncio.to_thread(group_by_meaning, vectors[: len(refused)], threshold)
        x = np.asarray(vectors, dtype=np.float32)
        later = x[len(refused) :]
        out: list[GapGroup] = []
        for members in clusters:
            asked = [refused[i] for i in members]  # newest first, as the store reads them
            if len(later) and self._is_settled(x[members], later, asked[0].asked_at, settling):
                continue
            out.append(_group(asked))
        out.sort(key=lambda g: (-g.count, -g.last_asked.timestamp()))
        return out

    def _is_settled(
        self,
        group: np.ndarray[Any, Any],
        later: np.ndarray[Any, Any],
        last: datetime,
        settling: Sequence[AskedQuestion],
    ) -> bool:
        alike = (later @ group.T).mean(axis=1) >= self._config.threshold
        return any(ok and q.asked_at > last for ok, q in zip(alike, settling, strict=True))


def _group(asked: Sequence[AskedQuestion]) -> GapGroup:
    newest = asked[0]
    places = Counter(Place(q.channel, q.channel_name) for q in asked)
    wordings = list(dict.fromkeys(q.text.strip() for q in asked[1:]))
    return GapGroup(
        question=newest.text.strip(),
        count=len(asked),
        last_asked=newest.asked_at,
        places=tuple(p for p, _ in places.most_common()),
        link=thread_url(newest),
        wordings=tuple(w for w in wordings if w != newest.text.strip())[:3],
    )
