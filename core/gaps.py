"""Gap reports: the questions the bot could not answer, grouped by meaning.

A question is a gap when its answer abstained or was voted down more than up, or when it was
asked without a mention in an autoanswer channel and left alone for want of knowledge
(``GapGroup.unasked`` counts those; ``core.autoanswer``). Gaps are grouped by meaning
(``group_by_meaning``): the embeddings of their words without mentions, links, emoji,
greetings and thanks, with office shorthand spelled out (``compared_text``), with the bar for
"alike" raised where questions are crowded, and never joining two questions that expect
different kinds of answer (who and where). A group is settled, and left out, once a question
as alike as that, asked after the group's last one, was answered and voted 👍, or was
answered and not voted down for ``GapConfig.settle``.

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
from core.glossary import plain_words
from core.retrieval.base import Embedder

log = logging.getLogger(__name__)

# Fit on the calibration handbook (hr) of bench/gap_grouping.py's team-style set and checked on
# the other handbooks and on SQuAD (docs/benchmarks.md). A question's bar is its mean cosine
# (all-MiniLM-L6-v2) to its NEIGHBOURS nearest other questions, at least FLOOR (hr's mean,
# rounded), so a small or sparse report joins questions whose cosine is about 0.5 or more, and
# a crowded one (many questions on one subject) asks for more. Synonyms the model does not know
# stay apart, except office shorthand, which ``compared_text`` spells out ("PTO" and "vacation
# days": cosine 0.21 as asked, 0.60 spelled out).
DEFAULT_THRESHOLD = 0.0  # how far the cosine must be above the two questions' bars, on average
NEIGHBOURS = 5
FLOOR = 0.5
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,80}$")
_MARKUP = re.compile(
    r"<[@#!][^>]*>|<a?:\w+:\d+>"  # Slack and Discord mentions, channel links, @here, emoji
    r"|<(?:https?|mailto):[^>]*>|https?://\S+"  # links
    r"|:[a-z0-9_+'-]+:"  # emoji codes
    r"|[\U0001F000-\U0001FAFF\u2600-\u27BF]",  # emoji
    re.IGNORECASE,
)
_OPENING = re.compile(
    r"^\W*(?:(?:hi|hey|hello|hiya|yo|morning|good (?:morning|afternoon))"
    r"(?: (?:all|team|everyone|folks|there|guys|y'all))?\b\W*"
    r"|(?:quick|silly|dumb) (?:question|q)\b\W*"
    r"|(?:does )?(?:any ?one|anybody|someone) knows?\b(?: if| whether)?\W*"
    r"|sorry(?: if this is obvious)?\b\W*)+",
    re.IGNORECASE,
)
_CLOSING = re.compile(
    r"\W*\b(?:(?:thanks|thank you|thx|ty|cheers|tia)(?: (?:in advance|a lot|so much|all))?"
    r"|please|pls|plz)\W*$",
    re.IGNORECASE,
)
# The kind of answer a question expects, where its first question word says so.
_YES_NO = re.compile(
    r"(?:is|are|was|were|am|do|does|did|can|could|may|might|should|will|would|have|has|had|"
    r"must|shall)\b",
    re.IGNORECASE,
)
_QUESTION_WORD = re.compile(r"\b(who|whom|whose|where|when|why|how|what|which)\b\W*(\w*)", re.I)
_KINDS = {
    "who": "person",
    "whom": "person",
    "whose": "person",
    "where": "place",
    "when": "time",
    "why": "reason",
}
_CODES = {"": 0, "person": 1, "place": 2, "time": 3, "reason": 4, "amount": 5}
_AMOUNT = re.compile(r"many|much|long|far|often|old|big|fast|quickly|soon|large|tall|early|late")
_TIME = re.compile(r"years?|date|time|day|month|century|decade")


@dataclass(frozen=True, slots=True)
class GapConfig:
    threshold: float = DEFAULT_THRESHOLD
    neighbours: int = NEIGHBOURS
    floor: float = FLOOR
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
    unasked: int = 0  # of ``count``: asked unmentioned in an autoanswer channel, left alone

    def as_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "count": self.count,
            "unasked": self.unasked,
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


def question_text(text: str) -> str:
    """What of a question is compared: its words without mentions, links, emoji, a greeting in
    front or thanks behind ("hey team :wave: how do I print? thanks!" is "how do I print")."""
    stripped = _CLOSING.sub("", _OPENING.sub("", _MARKUP.sub(" ", text).strip()))
    return " ".join(stripped.split()) or " ".join(text.split())


def compared_text(text: str) -> str:
    """What of a question is embedded to compare it: ``question_text`` with workplace
    shorthand spelled out ("PTO allowance?" is "vacation allowance?"; ``core.glossary``)."""
    return plain_words(question_text(text))


def answer_kind(question: str) -> str:
    """The kind of answer ``question`` expects: "person" (who), "place" (where), "time" (when,
    what year), "reason" (why) or "amount" (how many, how long); "" for a yes/no question and
    for what, which and how-to, which may ask for anything."""
    text = question_text(question)
    found = None if _YES_NO.match(text) else _QUESTION_WORD.search(text)
    if found is None:
        return ""
    word, after = found.group(1).lower(), found.group(2).lower()
    if word == "how":
        return "amount" if _AMOUNT.fullmatch(after) else ""
    if word in ("what", "which"):
        return "time" if _TIME.fullmatch(after) else ""
    return _KINDS[word]


class Alikeness:
    """How alike questions are: the cosine of two questions less the mean of their bars (each
    question's mean cosine to its ``neighbours`` nearest other questions, missing ones counted
    as ``floor``, and at least ``floor``), or -inf when they expect different kinds of answer.
    ``vectors``: the unit embeddings of each text's ``compared_text``."""

    def __init__(
        self, texts: Sequence[str], vectors: Sequence[Sequence[float]], config: GapConfig
    ) -> None:
        self._x = _rows(vectors, len(texts), 0)
        self._kinds = _kinds(texts)
        self._config = config
        cosines = self._x @ self._x.T
        np.fill_diagonal(cosines, -np.inf)
        self._bars = self._bar(cosines)
        self.matrix = self._alike(cosines, self._bars, self._kinds)

    def to(self, texts: Sequence[str], vectors: Sequence[Sequence[float]]) -> np.ndarray[Any, Any]:
        """How alike other questions (rows) are to these (columns); their bars are measured
        against these."""
        x = _rows(vectors, len(texts), self._x.shape[1])
        cosines = x @ self._x.T
        return self._alike(cosines, self._bar(cosines), _kinds(texts))

    def _bar(self, cosines: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        want, floor = self._config.neighbours, self._config.floor
        k = min(want, cosines.shape[1])
        top = -np.partition(-cosines, k - 1, axis=1)[:, :k] if k else cosines[:, :0]
        top = np.where(np.isfinite(top), top, floor)
        bars: np.ndarray[Any, Any] = np.maximum(
            (top.sum(axis=1) + (want - k) * floor) / want, floor
        )
        return bars

    def _alike(
        self, cosines: np.ndarray[Any, Any], bars: np.ndarray[Any, Any], kinds: np.ndarray[Any, Any]
    ) -> np.ndarray[Any, Any]:
        alike = cosines - (bars[:, None] + self._bars[None, :]) / 2
        ka, kb = kinds[:, None], self._kinds[None, :]
        return np.where((ka != kb) & (ka > 0) & (kb > 0), -np.inf, alike)


def _kinds(texts: Sequence[str]) -> np.ndarray[Any, Any]:
    return np.array([_CODES[answer_kind(t)] for t in texts], dtype=np.int8)


def _rows(vectors: Sequence[Sequence[float]], n: int, width: int) -> np.ndarray[Any, Any]:
    if n == 0:
        return np.zeros((0, width), dtype=np.float32)
    return np.asarray(vectors, dtype=np.float32).reshape(n, -1)


def group_by_meaning(
    texts: Sequence[str], vectors: Sequence[Sequence[float]], config: GapConfig | None = None
) -> list[list[int]]:
    """The indices of each group of questions that ask the same, in the order of their first
    member. ``vectors``: the unit embeddings of each text's ``compared_text``. Average linkage
    over ``Alikeness``: two groups join while their questions are, on average,
    ``config.threshold`` or more alike (the most alike pair of groups first)."""
    config = config or GapConfig()
    return average_linkage(Alikeness(texts, vectors, config).matrix, config.threshold)


def average_linkage(alike: np.ndarray[Any, Any], threshold: float) -> list[list[int]]:
    """Average-linkage clustering of a square alikeness matrix (its diagonal ignored)."""
    n = len(alike)
    if n == 0:
        return []
    sim = np.array(alike, dtype=np.float64)
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
    if q.platform == "discord" and q.unasked:  # no thread was started: the message itself
        return f"https://discord.com/channels/{q.workspace}/{q.channel}/{q.thread}"
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
        vectors = await self._embedder.embed_documents([compared_text(t) for t in texts])
        n = len(refused)
        clusters, later = await asyncio.to_thread(
            self._cluster, texts[:n], vectors[:n], texts[n:], vectors[n:]
        )
        out: list[GapGroup] = []
        for members in clusters:
            asked = [refused[i] for i in members]  # newest first, as the store reads them
            if self._is_settled(later[:, members], asked[0].asked_at, settling):
                continue
            out.append(_group(asked))
        out.sort(key=lambda g: (-g.count, -g.last_asked.timestamp()))
        return out

    def _cluster(
        self,
        texts: Sequence[str],
        vectors: Sequence[Sequence[float]],
        later_texts: Sequence[str],
        later_vectors: Sequence[Sequence[float]],
    ) -> tuple[list[list[int]], np.ndarray[Any, Any]]:
        """The groups, and how alike each later question is to each refused one."""
        alikeness = Alikeness(texts, vectors, self._config)
        clusters = average_linkage(alikeness.matrix, self._config.threshold)
        return clusters, alikeness.to(later_texts, later_vectors)

    def _is_settled(
        self, alike: np.ndarray[Any, Any], last: datetime, settling: Sequence[AskedQuestion]
    ) -> bool:
        if not len(alike):
            return False
        ok = alike.mean(axis=1) >= self._config.threshold
        return any(o and q.asked_at > last for o, q in zip(ok, settling, strict=True))


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
        unasked=sum(q.unasked for q in asked),
    )
