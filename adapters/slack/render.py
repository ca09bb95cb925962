"""Block Kit rendering: core's Answer, progress and command results as Slack messages.

Slack's limits shape everything here: 3,000 characters per section text and 50 blocks per
message. A long answer becomes several messages; the Sources and the 👍/👎 buttons always come
last, so splitting never loses them.

Everything shown here may carry outside text (answers quote documents; file names, titles and
command results are chosen by users), so every string is escaped before it is sent: no
``<!channel>``, ``<@U…>`` or masked ``<url|label>`` link can come from it, links written in
Markdown show their URL, and bare ``@channel``/``@here``/``@everyone`` are broken with an
invisible joiner so that no parse mode can turn them into a notification.
"""

from __future__ import annotations

import re
import textwrap
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.admin import CommandResult
from core.commands.rich import (
    ChannelRef,
    Code,
    Line,
    Link,
    Plain,
    Preformatted,
    RichText,
    Span,
    Strong,
    UserRef,
    plain_text,
)
from core.enums import AnswerMode
from core.types import Answer, Citation, Progress, UploadOutcome

Block = dict[str, Any]

SECTION_LIMIT = 3000
BLOCK_LIMIT = 50
FALLBACK_LIMIT = 3000
QUOTE_LIMIT = 200
FEEDBACK_BLOCK = "lore_feedback"
COUNTS_BLOCK = "lore_feedback_counts"
SOURCE_PREFIX = "lore_source_"
SHARE_BLOCK = "lore_share"
SHARE_ACTION = "lore_share"  # + "_<n>": action ids are unique within a message
ASK_OWNER_BLOCK = "lore_ask_owner"
ASK_OWNER_ACTION = "lore_ask_owner"  # value: the answer's message id
OWNER_SAVE_ACTION = "lore_owner_save"  # value: the thread's ts
NOT_GROUNDED = "⚠️ This answer is not grounded in the sources; check it before relying on it."
EXTRACTIVE = "Quoted from the sources (no written answer is available right now)."
CHART_FILENAME = "lorekeeper-usage.png"
CHART_SENT = "📊 I sent you the chart in a direct message (only you can see it)."
CHART_FAILED = "I couldn't send you the chart; the table has the same numbers."

_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_ITALIC = re.compile(r"(?<![*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+")
_QUOTE = re.compile(r"^(\s*)&gt;\s?")
_ROOM_MENTION = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
# Ids that may go into <#…> and <@…>: anything else is shown as a plain #name or @name.
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,20}")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")
_FENCE_BREAK = "`\u200b``"  # three backticks in a table cannot close its code block
_BOLD_MARK = "\x00"
_URL_MARK = "\x01"
_URL_SLOT = re.compile(r"\x01(\d+)\x01")
_JOINER = "\u200d"


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """One message to post: fallback ``text`` (notifications) and the blocks."""

    text: str
    blocks: list[Block] = field(default_factory=list)


def escape(text: str) -> str:
    """Slack's three control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def quiet(mrkdwn: str) -> str:
    """``@channel``, ``@here`` and ``@everyone`` as words that cannot notify a room."""
    return _ROOM_MENTION.sub(lambda m: f"@{_JOINER}{m.group(1)}", mrkdwn)


def plain(text: str) -> str:
    """Outside text (a file name, a title, an error line) as inert mrkdwn."""
    return quiet(escape(text))


def demask(escaped: str) -> str:
    """Markdown links in escaped text as ``label (url)``: the URL stays visible."""
    return _LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})", escaped)


def _inline(segment: str) -> str:
    urls: list[str] = []

    def keep(m: re.Match[str]) -> str:
        # The URL is set aside so emphasis rules cannot rewrite it (``__init__`` in a path).
        urls.append(m.group(2))
        return f"{m.group(1)} ({_URL_MARK}{len(urls) - 1}{_URL_MARK})"

    segment = _LINK.sub(keep, segment)
    segment = _BOLD.sub(lambda m: f"{_BOLD_MARK}{m.group(1) or m.group(2)}{_BOLD_MARK}", segment)
    segment = _ITALIC.sub(lambda m: f"_{m.group(1)}_", segment)
    segment = _STRIKE.sub(lambda m: f"~{m.group(1)}~", segment)
    segment = _URL_SLOT.sub(lambda m: urls[int(m.group(1))], segment)
    return segment.replace(_BOLD_MARK, "*")


def _line(line: str) -> str:
    line = escape(line)
    heading = _HEADING.match(line)
    if heading:
        return f"*{_inline(heading.group(1)).replace('*', '')}*"
    line = _QUOTE.sub(lambda m: f"{m.group(1)}>", line, count=1)
    line = _BULLET.sub(lambda m: f"{m.group(1)}• ", line, count=1)
    parts = line.split("`")
    # Odd-numbered parts are inline code: left exactly as written.
    return "`".join(p if i % 2 else _inline(p) for i, p in enumerate(parts))


def to_mrkdwn(markdown: str) -> str:
    """Markdown (as a language model writes it) to Slack mrkdwn; code stays untouched.

    The text quotes documents, so it is escaped first: Slack markup in it shows as typed, and a
    Markdown link becomes ``label (url)`` rather than a masked link.
    """
    markdown = markdown.replace(_BOLD_MARK, "").replace(_URL_MARK, "")
    out: list[str] = []
    in_code = False
    for line in markdown.split("\n"):
        if line.lstrip().startswith("```"):
            in_code = not in_code
            out.append("```")
            continue
        out.append(escape(line) if in_code else _line(line))
    if in_code:
        out.append("```")
    return quiet("\n".join(out))


def split_text(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at paragraphs, lines or words when possible.
    A code block cut in two is closed and reopened so both halves render as code."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        room = limit - 4  # space to close a code fence
        cut = max(rest.rfind("\n\n", 0, room), rest.rfind("\n", 0, room))
        if cut < room // 2:
            cut = rest.rfind(" ", 0, room)
        if cut < room // 2:
            cut = room
        piece, rest = rest[:cut].rstrip(), rest[cut:].lstrip(" \n")
        if piece.count("```") % 2:
            piece, rest = piece + "\n```", "```\n" + rest
        pieces.append(piece)
    if rest.strip():
        pieces.append(rest)
    return pieces or [""]


def shorten(text: str, width: int) -> str:
    return textwrap.shorten(" ".join(text.split()), width=width, placeholder="…")


def section(text: str, *, block_id: str | None = None) -> Block:
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_LIMIT]}}
    if block_id:
        block["block_id"] = block_id
    return block


def context(text: str, *, block_id: str | None = None) -> Block:
    block: Block = {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}
    if block_id:
        block["block_id"] = block_id
    return block


def link_url(url: str) -> str | None:
    """An http(s) URL made safe inside ``<url|label>`` (None for any other scheme)."""
    if not url.startswith(("http://", "https://")):
        return None
    safe = "".join(url.split()).replace("&", "&amp;")
    for char, code in (("<", "%3C"), (">", "%3E"), ("|", "%7C")):
        safe = safe.replace(char, code)
    return safe


def source_line(citation: Citation) -> str:
    """``[n] <url|title>`` and a short quote underneath."""
    # A "|" in the label is shown as a look-alike so it can never split the link markup.
    title = plain(shorten(citation.title, 150)).replace("|", "¦")
    url = link_url(citation.source_url or "")
    link = f"<{url}|{title}>" if url else f"*{title}*"
    quote = shorten(citation.quote, QUOTE_LIMIT) if citation.quote.strip() else ""
    shown = quiet(demask(escape(quote)))
    return f"*[{citation.n}]* {link}" + (f"\n>{shown}" if shown else "")


def feedback_block(message_id: str) -> Block:
    def button(emoji: str, action: str, label: str) -> Block:
        return {
            "type": "button",
            "action_id": action,
            "value": message_id,
            "text": {"type": "plain_text", "text": emoji, "emoji": True},
            "accessibility_label": label,
        }

    return {
        "type": "actions",
        "block_id": FEEDBACK_BLOCK,
        "elements": [
            button("👍", "lore_feedback_up", "Helpful"),
            button("👎", "lore_feedback_down", "Not helpful"),
        ],
    }


def answer_blocks(answer: Answer, *, buttons: bool = True) -> list[Block]:
    """Every block of an answer in order (may exceed 50: see :func:`answer_messages`)."""
    blocks: list[Block] = []
    if answer.notice:
        blocks.append(context(f"ℹ️ {plain(answer.notice)}"))
    blocks.extend(section(piece) for piece in split_text(to_mrkdwn(answer.text)))
    return blocks + answer_footer(answer, buttons=buttons)


def answer_footer(answer: Answer, *, buttons: bool = True) -> list[Block]:
    """What follows an answer's text: its caveats, the Sources and the 👍/👎 buttons."""
    blocks: list[Block] = []
    if answer.mode == AnswerMode.EXTRACTIVE and answer.citations:
        blocks.append(context(EXTRACTIVE))
    if answer.mode == AnswerMode.LLM and not answer.grounded and not answer.abstained:
        blocks.append(context(NOT_GROUNDED))
    if answer.citations:
        blocks.append({"type": "divider"})
        blocks.append(section("*Sources*", block_id="lore_sources"))
        blocks.extend(
            section(source_line(c), block_id=f"{SOURCE_PREFIX}{c.n}") for c in answer.citations
        )
    if buttons and answer.message_id is not None:
        blocks.append(feedback_block(str(answer.message_id)))
        if answer.ask_owner:
            blocks.append(ask_owner_block(answer.message_id))
    return blocks


def _button(action: str, value: str, label: str) -> Block:
    return {
        "type": "button",
        "action_id": action,
        "value": value,
        "text": {"type": "plain_text", "text": label},
    }


def ask_owner_block(answer_id: uuid.UUID) -> Block:
    """The "Ask an owner" button under an answer that could not help."""
    button = _button(ASK_OWNER_ACTION, str(answer_id), "Ask an owner")
    return {"type": "actions", "block_id": ASK_OWNER_BLOCK, "elements": [button]}


def ask_owner_offer(answer_id: uuid.UUID) -> SlackMessage:
    """After a 👎, to the voter alone: the owner of what this place searches may be asked."""
    text = "Not helpful? The owner of what this place searches can answer it in this thread."
    return SlackMessage(text, [section(text), ask_owner_block(answer_id)])


def owner_mention(owner: str, namespace: str, question: str) -> SlackMessage:
    """The thread's question put to the owner: the one mention is the owner's (checked as a
    user id); the question and the namespace are escaped, so nothing in them notifies."""
    who = f"<@{owner}>" if _USER_ID.fullmatch(owner) else "Owner"
    quoted = "\n".join(f">{line}" for line in plain(shorten(question, 1000)).splitlines())
    text = (
        f"{who}, a question about {plain(namespace)} that I couldn't answer from its "
        f"documents:\n{quoted or '>(no text)'}\nCould you answer it here?"
    )
    return SlackMessage(text, [section(text)])


def save_offer(thread_ts: str) -> SlackMessage:
    """To the owner alone, once they answered in the thread: save it as knowledge."""
    text = "Thanks for answering. Save this thread so I can answer the question next time?"
    button = _button(OWNER_SAVE_ACTION, thread_ts, "Save thread")
    return SlackMessage(text, [section(text), {"type": "actions", "elements": [button]}])


def save_suggestion(owner: str, member: str, namespace: str, thread_ts: str) -> SlackMessage:
    """In the thread, to its namespace's owner: a member suggests saving it as knowledge."""
    who = f"<@{owner}>" if _USER_ID.fullmatch(owner) else "Owner"
    by = f"<@{member}>" if _USER_ID.fullmatch(member) else "Someone"
    text = (
        f"{who}, {by} suggests saving this thread to Lorekeeper, so that {plain(namespace)} "
        "can answer it next time."
    )
    button = _button(OWNER_SAVE_ACTION, thread_ts, "Save thread")
    return SlackMessage(text, [section(text), {"type": "actions", "elements": [button]}])


def answer_messages(answer: Answer, *, buttons: bool = True) -> list[SlackMessage]:
    """The answer as one or more messages of at most 50 blocks; buttons end the last one."""
    blocks = answer_blocks(answer, buttons=buttons)
    chunks = [blocks[i : i + BLOCK_LIMIT] for i in range(0, len(blocks), BLOCK_LIMIT)] or [[]]
    fallback = plain(shorten(answer.text, FALLBACK_LIMIT)) if answer.text.strip() else "(no answer)"
    return [
        SlackMessage(fallback if i == 0 else "(continued)", chunk) for i, chunk in enumerate(chunks)
    ]


def placeholder(namespaces: Sequence[str]) -> str:
    """``Searching <namespaces>…`` (just ``Searching…`` before core has said where)."""
    where = f" {', '.join(namespaces)}" if namespaces else ""
    return f"_Searching{plain(where)}…_"


def stream_markdown(text: str) -> str:
    """Answer text for Slack's native streaming (``markdown_text``, which Slack renders as
    Markdown): a Markdown link shows its URL and no ``<…>`` markup or room mention can notify.
    Per-character, so the text of a prefix is a prefix of the whole text's."""
    return quiet(demask(text.replace("<", "<" + _JOINER)))


def streaming(text_so_far: str) -> str:
    """The partial answer while it streams (one plain message, cut to fit)."""
    converted = to_mrkdwn(text_so_far)
    if len(converted) > SECTION_LIMIT:
        converted = converted[: SECTION_LIMIT - 1]
    return converted + " …"


def progress_text(filename: str, progress: Progress) -> str:
    detail = f" ({plain(progress.detail)})" if progress.detail else ""
    stage = f"{plain(progress.stage)} {progress.fraction:.0%}"
    return f"_Indexing {plain(filename)}: {stage}{detail}_"


def notice(text: str) -> SlackMessage:
    """A line from core (an upload's outcome, an error) that may name files: shown inert."""
    shown = plain(text)
    return SlackMessage(shown, [section(shown)])


def upload_outcome(outcome: UploadOutcome) -> SlackMessage:
    """An upload's outcome line; a file that stayed in the conversation gets one "Share with"
    button per namespace its uploader may share it with."""
    message = notice(outcome.message)
    if outcome.document_id is None or not outcome.share_with:
        return message
    buttons = [
        {
            "type": "button",
            "action_id": f"{SHARE_ACTION}_{i}",
            "value": f"{outcome.document_id}:{name}",
            "text": {"type": "plain_text", "text": f"Share with {name}"[:75]},
        }
        for i, name in enumerate(outcome.share_with)
    ]
    share = {"type": "actions", "block_id": SHARE_BLOCK, "elements": buttons}
    return SlackMessage(message.text, [*message.blocks, share])


def shared(blocks: Iterable[Mapping[str, Any]], namespace: str) -> list[Block]:
    """An outcome message once its file was shared: the buttons give way to a note."""
    kept: list[Block] = [dict(b) for b in blocks if b.get("block_id") != SHARE_BLOCK]
    return [*kept, context(f"Shared with {plain(namespace)}.")][:BLOCK_LIMIT]


def with_feedback_counts(blocks: Iterable[Mapping[str, Any]], up: int, down: int) -> list[Block]:
    """The same message with the vote counts shown under the buttons."""
    out: list[Block] = [dict(b) for b in blocks if b.get("block_id") != COUNTS_BLOCK]
    counts = context(f"👍 {up} · 👎 {down}", block_id=COUNTS_BLOCK)
    at = next((i for i, b in enumerate(out) if b.get("block_id") == FEEDBACK_BLOCK), None)
    if at is None:
        out.append(counts)
    else:
        out.insert(at + 1, counts)
    return out[:BLOCK_LIMIT]


def command_response(result: CommandResult) -> SlackMessage:
    """A `/lore` result; an `ask` answer keeps its sources (no buttons: it is private)."""
    if result.answer is not None and not result.answer.duplicate:
        first = answer_messages(result.answer, buttons=False)
        blocks = [b for m in first for b in m.blocks][:BLOCK_LIMIT]
        return SlackMessage(first[0].text, blocks)
    text = mrkdwn(result.body) or "Done."
    blocks = [section(p) for p in split_text(text)][:BLOCK_LIMIT]
    if len(text) > FALLBACK_LIMIT:
        text = plain(shorten(plain_text(result.body), FALLBACK_LIMIT))
    return SlackMessage(text, blocks)


def mrkdwn(text: RichText) -> str:
    """Core's rich text as mrkdwn: every word it holds is escaped, so only core's own markup
    (emphasis, code, channel links) is markup; no link is masked and nothing notifies."""
    return "\n".join(_mrkdwn_block(b) for b in text.blocks)


def _mrkdwn_block(block: Line | Preformatted) -> str:
    if isinstance(block, Preformatted):
        fence_free = plain(block.text).replace("```", _FENCE_BREAK)
        return f"```\n{fence_free}\n```"
    return "".join(mrkdwn_span(s) for s in block.spans)


def mrkdwn_span(span: Span) -> str:
    match span:
        case Plain(text):
            return plain(text)
        case Strong(text):
            return f"*{plain(text).replace('*', '')}*"
        case Code(text):
            return "`" + plain(text).replace("`", "'") + "`"
        case ChannelRef(id=channel_id):
            return f"<#{channel_id}>" if _CHANNEL_ID.fullmatch(channel_id) else plain(span.label)
        case UserRef(id=user_id):
            return f"<@{user_id}>" if _USER_ID.fullmatch(user_id) else plain(span.label)
        case Link(url, label):
            safe = link_url(url)
            return f"{plain(label)} (<{safe}>)" if safe else plain(label)


def chart_comment(command_text: str) -> str:
    """The words posted with the usage chart in the admin's direct messages."""
    return f"Chart for `/lore {plain(command_text.strip())}`"


def with_note(message: SlackMessage, note: str) -> SlackMessage:
    """The same message with a one-line note (a context block) at the end."""
    blocks = [*message.blocks[: BLOCK_LIMIT - 1], context(note)]
    return SlackMessage(message.text, blocks)
