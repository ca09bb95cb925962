"""The conversation pipeline: what happens to a message once an adapter has translated it.

Every chat platform shares these rules, so they live here once:

- *Addressed or not.* A mention or a DM is for the bot; any other message only when it is a
  follow-up in a thread the bot has answered in, or a top-level question in a channel with
  autoanswer on that :class:`~core.autoanswer.AutoAnswerService` decides to answer. Such a
  question is decided before anything is shown, and it is answered or left alone without a
  word: no placeholder, no abstention, no failure notice.
- *Files first.* A message's files are claimed (a redelivery is not indexed twice), judged from
  name and size before downloading, downloaded, indexed and reported one by one; then the
  message's text is answered when it asks something (:func:`asks`), so a question posted with a
  file is answered from it and "here is the handbook" is not.
- *One visible reply early.* When core has not said "thinking" within ``placeholder_after``
  seconds (where a platform wants that), a generic placeholder goes up; calls on a reply are
  serialised, so an
  adapter's reply is a plain sequence of posts and edits.
- *Errors.* A :class:`~core.errors.LorekeeperError` shows its ``user_message``; anything else is
  logged with its traceback and shows :data:`~core.wording.ANSWER_FAILED` or
  :data:`~core.wording.UPLOAD_FAILED`. A user
  always sees an answer or a reason.
- *Bounded work.* At most ``concurrency`` answers and uploads run at once (the rest wait with
  their placeholder up), and :meth:`ConversationPipeline.drain` waits up to
  :data:`DRAIN_SECONDS` for the work in flight at shutdown.

Adapters provide the two ports below for each message, and a :class:`~core.types.Reply` per
answer and per file.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from core.answer import AnswerService
from core.autoanswer import AutoAnswerService, Decision, top_level
from core.enums import AnswerMode
from core.errors import LorekeeperError
from core.owners import NO_OWNER, OwnerCall, OwnerService, SaveOffer
from core.types import Answer, IncomingFile, IncomingMessage, Progress, Reply, UploadOutcome
from core.uploads import UploadService
from core.wording import (
    ANSWER_FAILED,
    ASK_OWNER_FAILED,
    SAVE_THREAD_REFUSED,
    UPLOAD_FAILED,
    VOTE_FAILED,
)

log = logging.getLogger(__name__)

DRAIN_SECONDS = 20.0


class FileSource(Protocol):
    """How an adapter gets a message's files."""

    async def resolve(self, file: IncomingFile) -> IncomingFile:
        """The file with its real name and size (an event may describe it by id only)."""

    async def download(self, file: IncomingFile) -> bytes:
        """The file's bytes (bounded by the adapter's size limit)."""


class ReplyChannel(Protocol):
    """Where the replies to one message go, as its adapter provides them."""

    async def prepare(self, message: IncomingMessage) -> IncomingMessage:
        """Called once the message is known to be for the bot: the message with what costs a
        platform call to learn (names, whether its author is an admin, the thread to answer
        in)."""

    def reply(self, file: IncomingFile | None = None) -> Reply:
        """A fresh reply: for the answer (``file`` None) or for one file's progress."""


class InFlight:
    """The tasks doing a piece of work now, so that shutdown can wait for them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    @contextlib.contextmanager
    def tracked(self) -> Iterator[None]:
        """Count the current task in while the block runs."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def drain(self, within: float) -> None:
        """Wait up to ``within`` seconds for the tracked tasks (but the caller); cancel the
        rest."""
        pending = {t for t in self._tasks if t is not asyncio.current_task()}
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=within)
        for task in late:
            log.warning("%s still running at shutdown; cancelling", task.get_name())
            task.cancel()


@dataclass(frozen=True, slots=True)
class Vote:
    """A vote's outcome: the answer's totals, or the words that say why it was refused."""

    up: int = 0
    down: int = 0
    refusal: str | None = None
    ask_owner: bool = False  # a 👎 where a namespace owner may still be asked: offer it


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    concurrency: int = 32
    # seconds before a generic placeholder when core has not said "thinking" (None: none)
    placeholder_after: float | None = None
    drain_seconds: float = DRAIN_SECONDS


class ConversationPipeline:
    """Handles messages for one adapter; ``drain()`` at shutdown."""

    def __init__(
        self,
        *,
        answers: AnswerService,
        uploads: UploadService,
        owners: OwnerService | None = None,
        config: PipelineConfig | None = None,
        autoanswer: AutoAnswerService | None = None,
    ) -> None:
        self._answers = answers
        self._auto = autoanswer
        self._uploads = uploads
        self._owners = owners
        self._config = config or PipelineConfig()
        self._slots = asyncio.Semaphore(self._config.concurrency)
        self._work = InFlight()
        # one platform deletion at a time: events naming the same documents (a channel and
        # each of its threads) find them deleted instead of deleting and auditing them twice
        self._forgetting = asyncio.Lock()

    @property
    def uploads(self) -> UploadService:
        return self._uploads

    @property
    def in_flight(self) -> int:
        """Messages being handled now."""
        return len(self._work)

    async def handle(
        self,
        message: IncomingMessage,
        channel: ReplyChannel,
        *,
        addressed: bool,
        files: FileSource | None = None,
        offer_save: Callable[[SaveOffer], Awaitable[None]] | None = None,
    ) -> None:
        """Index the message's files and answer its text, if it is for the bot. A reply by a
        namespace owner who was asked in this thread is their answer, not a question (unless
        it mentions the bot): ``offer_save`` offers them "Save thread" once."""
        with self._work.tracked():
            unasked: Decision | None = None
            if offer_save is not None and await self._owner_answered(
                message, addressed=addressed, offer_save=offer_save
            ):
                return
            try:
                if not await self._for_us(message, addressed=addressed):
                    unasked = await self._answer_unasked(message)
                    if unasked is None:
                        return
                claimed = bool(message.files) and await self._uploads.claim(message)
                message = await channel.prepare(message)
            except Exception:
                log.exception("accepting %s failed", message.event_id)
                if unasked is None:
                    await _fail(channel.reply(), ANSWER_FAILED)
                return
            async with self._slots:
                if claimed:
                    for file in message.files:
                        await self._ingest(message, file, channel.reply(file), files)
                    await self._uploads.finished(message)
                if message.text and (not message.files or asks(message.text)):
                    await self._answer(message, channel.reply(), unasked=unasked)

    async def ask(self, message: IncomingMessage, reply: Reply) -> Answer | None:
        """Answer one question (a command's, or a chat's) through ``reply``; None when it was
        a repeated delivery or failed (the reply said why)."""
        with self._work.tracked():
            async with self._slots:
                return await self._answer(message, reply)

    async def vote(
        self, *, platform: str, workspace_id: str, user_id: str, message_id: uuid.UUID, value: int
    ) -> Vote:
        """A 👍 (1) or 👎 (-1) on an answer: the new totals, or why it was not recorded."""
        with self._work.tracked():
            try:
                up, down = await self._answers.feedback(
                    platform=platform,
                    workspace_id=workspace_id,
                    user_id=user_id,
                    message_id=message_id,
                    value=value,
                )
            except LorekeeperError as exc:
                log.warning("vote on %s refused: %s", message_id, exc.reason)
                return Vote(refusal=exc.user_message)
            except Exception:
                log.exception("storing the vote on %s failed", message_id)
                return Vote(refusal=VOTE_FAILED)
            offer = value < 0 and await self._may_ask_owner(
                platform=platform, workspace_id=workspace_id, user_id=user_id, answer_id=message_id
            )
            return Vote(up=up, down=down, ask_owner=offer)

    async def _may_ask_owner(
        self, *, platform: str, workspace_id: str, user_id: str, answer_id: uuid.UUID
    ) -> bool:
        if self._owners is None:
            return False
        try:
            return await self._owners.may_ask(
                platform=platform, workspace_id=workspace_id, user_id=user_id, answer_id=answer_id
            )
        except Exception:
            log.exception("checking for an owner of %s failed", answer_id)
            return False

    async def ask_owner(
        self, *, platform: str, workspace_id: str, user_id: str, answer_id: uuid.UUID
    ) -> OwnerCall:
        """An "Ask an owner" click: the owner to mention in the answer's thread, or words for
        the clicker (``OwnerService.ask``)."""
        if self._owners is None:
            return OwnerCall(refusal=NO_OWNER)
        with self._work.tracked():
            try:
                return await self._owners.ask(
                    platform=platform,
                    workspace_id=workspace_id,
                    user_id=user_id,
                    answer_id=answer_id,
                )
            except Exception:
                log.exception("asking the owner about %s failed", answer_id)
                return OwnerCall(refusal=ASK_OWNER_FAILED)

    async def suggest_save(self, message: IncomingMessage) -> OwnerCall:
        """A member's "Save thread" where they may not save: the owner to mention in the
        thread with a "Save thread" button, or words for the member
        (``OwnerService.suggest_save``)."""
        if self._owners is None:
            return OwnerCall(refusal=SAVE_THREAD_REFUSED)
        with self._work.tracked():
            try:
                return await self._owners.suggest_save(message)
            except Exception:
                log.exception("suggesting to save %s failed", message.thread_id)
                return OwnerCall(refusal=ASK_OWNER_FAILED)

    async def suggestion_failed(self, message: IncomingMessage) -> None:
        """The adapter could not post the suggestion ``suggest_save`` named: forget it."""
        if self._owners is None:
            return
        with self._work.tracked():
            try:
                await self._owners.suggestion_failed(message)
            except Exception:
                log.exception("forgetting the suggestion for %s failed", message.thread_id)

    async def _owner_answered(
        self,
        message: IncomingMessage,
        *,
        addressed: bool,
        offer_save: Callable[[SaveOffer], Awaitable[None]],
    ) -> bool:
        """Whether ``message`` is the asked owner's first post in their thread and not
        addressed to the bot: then it is an answer, and only the "Save thread" offer follows.
        Never raises."""
        in_thread = message.message_id is None or message.thread_id != message.message_id
        if self._owners is None or not (addressed or in_thread):
            return False
        try:
            offer = await self._owners.replied(message)
        except Exception:
            log.exception("checking %s for an owner's answer failed", message.event_id)
            return False
        if offer is None:
            return False
        try:
            await offer_save(offer)
        except Exception:  # the offer is a courtesy: the owner's answer stays an answer
            log.exception("offering to save thread %s failed", offer.thread)
        return not addressed

    async def forget(
        self,
        platform: str,
        *,
        file_ids: Sequence[str] = (),
        message_ids: Sequence[str] = (),
        workspace: str | None = None,
    ) -> int:
        """Files (or the messages that carried them) were deleted on the platform: delete the
        documents made from them. Returns how many went; a failure is logged, never raised."""
        with self._work.tracked():
            gone = 0
            wanted = [("file", i) for i in file_ids] + [("message", i) for i in message_ids]
            for kind, platform_id in wanted:
                try:
                    async with self._forgetting:
                        gone += await self._uploads.deleted_on_platform(
                            platform,
                            file_id=platform_id if kind == "file" else None,
                            message_id=platform_id if kind == "message" else None,
                            workspace=workspace,
                        )
                except Exception:
                    log.exception("forgetting the documents of %s %s failed", kind, platform_id)
            if gone:
                log.info("deleted on %s: %d document(s) removed", platform, gone)
            return gone

    async def forget_removed(
        self,
        platform: str,
        *,
        message_id: str,
        kept_file_ids: Sequence[str],
        workspace: str | None = None,
    ) -> int:
        """A message was edited and now carries only ``kept_file_ids``: delete the documents
        made from the files taken off it. Returns how many went; a failure is logged."""
        removal = partial(
            self._uploads.removed_on_platform,
            platform,
            message_id=message_id,
            kept_file_ids=kept_file_ids,
            workspace=workspace,
        )
        return await self._forget(platform, f"message {message_id}", removal)

    async def forget_place(
        self,
        platform: str,
        *,
        workspace: str,
        channel_id: str,
        thread_id: str | None = None,
        surviving_message_id: str | None = None,
    ) -> int:
        """A channel (``thread_id`` None: with its threads) or a thread was deleted on the
        platform: delete the documents uploaded there, except the files of
        ``surviving_message_id`` (a message the deletion left, like the one a thread was
        started from). Returns how many went; a failure is logged, never raised."""
        removal = partial(
            self._uploads.place_deleted_on_platform,
            platform,
            workspace=workspace,
            channel_id=channel_id,
            thread_id=thread_id,
            surviving_message_id=surviving_message_id,
        )
        return await self._forget(platform, f"place {thread_id or channel_id}", removal)

    async def _forget(self, platform: str, what: str, removal: Callable[[], Awaitable[int]]) -> int:
        with self._work.tracked():
            try:
                async with self._forgetting:
                    gone = await removal()
            except Exception:
                log.exception("forgetting the documents of %s failed", what)
                return 0
        if gone:
            log.info("deleted on %s: %d document(s) of %s removed", platform, gone, what)
        return gone

    async def drain(self, within: float | None = None) -> None:
        """Wait (up to ``within`` seconds, default the configured budget) for messages being
        handled; what is left is cancelled."""
        await self._work.drain(within or self._config.drain_seconds)

    async def _for_us(self, message: IncomingMessage, *, addressed: bool) -> bool:
        if not (message.text or message.files):
            return False
        if addressed:
            return True
        # a message that starts a thread cannot be a follow-up
        return not top_level(message) and await self._answers.knows_thread(message)

    async def _answer_unasked(self, message: IncomingMessage) -> Decision | None:
        """The decision to answer a top-level message nobody addressed to the bot; None to
        leave it alone (never raises: a failure leaves the message alone, as nobody asked the
        bot)."""
        if self._auto is None or not top_level(message) or not asks(message.text):
            return None
        try:
            decision = await self._auto.decide(message)
        except Exception:
            log.exception("deciding on %s failed", message.event_id)
            return None
        return decision if decision.answer else None

    async def _answer(
        self, message: IncomingMessage, reply: Reply, *, unasked: Decision | None = None
    ) -> Answer | None:
        """Answer through ``reply``; ``unasked`` (autoanswer's decision, whose search the
        answer reuses): show an answer or nothing."""
        shown = Timely(reply, self._config.placeholder_after)
        searched = None if unasked is None else unasked.searched
        try:
            answer = await self._answers.answer(message, shown, searched=searched)
            if answer.duplicate or (unasked is not None and not _answered(answer)):
                await shown.discard()
                return None
            await shown.finish(answer)
            return answer
        except LorekeeperError as exc:
            log.warning("answering %s failed: %s", message.event_id, exc.reason)
            await (_fail(shown, exc.user_message) if unasked is None else _discard(shown))
        except Exception:
            log.exception("answering %s failed", message.event_id)
            await (_fail(shown, ANSWER_FAILED) if unasked is None else _discard(shown))
        finally:
            await shown.close()
        return None

    async def _ingest(
        self,
        message: IncomingMessage,
        file: IncomingFile,
        reply: Reply,
        source: FileSource | None,
    ) -> None:
        shown = Timely(reply, None)
        try:
            if source is None:
                raise RuntimeError("a message with files came without a FileSource")
            await shown.progress(Progress("downloading", 0.0))
            file = await source.resolve(file)
            refusal = self._uploads.precheck(file)
            if refusal is not None:  # judged from name and size: no download needed
                await shown.fail(refusal)
                return
            data = await source.download(file)
            await shown.done(await self._uploads.ingest(message, file, data, shown))
        except LorekeeperError as exc:
            log.warning("upload of %s failed: %s", file.file_id, exc.reason)
            await _fail(shown, exc.user_message)
        except Exception:
            log.exception("upload of %s failed", file.file_id)
            await _fail(shown, UPLOAD_FAILED.format(name=file.filename))
        finally:
            await shown.close()


# The first words of a question or a request (followed by a file they ask about), and the
# courtesies that may come before them.
_ASKING_WORDS = (
    "who whom whose what when where which why how is are was were am do does did can could "
    "should would will shall may might has have had summarise summarize explain describe list "
    "compare tell show give find check"
)
_COURTESY_WORDS = "please pls kindly hi hey hello ok okay so also and quick question"
_ASKING = frozenset(_ASKING_WORDS.split())
_COURTESY = frozenset(_COURTESY_WORDS.split())


def asks(text: str) -> bool:
    """Whether the words that come with a file ask something (a question mark, or a sentence
    that opens with a question word or a request, courtesies aside), rather than only present
    the file ("here is the handbook")."""
    if "?" in text:
        return True
    for sentence in re.split(r"[.!\n;]+", text.casefold()):
        words = [w.split("'")[0] for w in re.findall(r"[\w']+", sentence)]
        words = list(itertools.dropwhile(_COURTESY.__contains__, words))
        if words and words[0] in _ASKING:
            return True
    return False


def _answered(answer: Answer) -> bool:
    return not answer.abstained and answer.mode not in (AnswerMode.REFUSED, AnswerMode.DUPLICATE)


async def _discard(reply: Reply) -> None:
    """Take down what an unasked answer showed; never raises."""
    try:
        await reply.discard()
    except Exception:
        log.exception("could not take down an unasked answer")


async def _fail(reply: Reply, text: str) -> None:
    """Tell the user; never raises (it runs where everything else already failed)."""
    try:
        await reply.fail(text)
    except Exception:
        log.exception("could not post the failure notice")


class Timely:
    """A :class:`Reply` that shows a generic placeholder when core's ``thinking`` has not come
    within ``after`` seconds (None: never), and passes calls on one at a time, so the reply it
    wraps never sees two at once."""

    def __init__(self, reply: Reply, after: float | None) -> None:
        self._reply = reply
        self._lock = asyncio.Lock()
        self._shown = False
        self._over = False
        self._firing = False  # the timer's sleep is over: it posts (or not), never cut short
        self._timer = (
            asyncio.create_task(self._placeholder(after), name="placeholder")
            if after is not None
            else None
        )

    async def _placeholder(self, after: float) -> None:
        await asyncio.sleep(after)
        self._firing = True
        async with self._lock:
            if not (self._shown or self._over):
                await self._reply.thinking(())
                self._shown = True

    async def _stop_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is None or timer.done():
            return
        if not self._firing:
            timer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await timer

    async def thinking(self, namespaces: Sequence[str]) -> None:
        async with self._lock:
            self._shown = True
            await self._reply.thinking(namespaces)

    async def stream(self, text_so_far: str) -> None:
        async with self._lock:
            await self._reply.stream(text_so_far)

    async def progress(self, progress: Progress) -> None:
        async with self._lock:
            self._shown = True
            await self._reply.progress(progress)

    async def finish(self, answer: Answer) -> None:
        await self._last()
        async with self._lock:
            await self._reply.finish(answer)

    async def done(self, outcome: UploadOutcome) -> None:
        await self._last()
        async with self._lock:
            await self._reply.done(outcome)

    async def fail(self, text: str) -> None:
        await self._last()
        async with self._lock:
            await self._reply.fail(text)

    async def discard(self) -> None:
        await self._last()
        async with self._lock:
            if self._shown:
                await self._reply.discard()

    async def _last(self) -> None:
        self._over = True
        await self._stop_timer()

    async def close(self) -> None:
        """No placeholder any more (the work is over, whatever happened)."""
        await self._last()
