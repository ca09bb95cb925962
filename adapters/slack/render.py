"""Block Kit rendering: core's Answer, progress and command results as Slack messages.

Slack's limits shape everything here: 3,000 characters per section text and 50 blocks per
message. A long answer becomes several messages; the Sources and the 👍/👎 buttons always come
last, so splitting never loses them.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.admin import CommandResult
from core.types import Answer, Citation, Progress

Block = dict[str, Any]

SECTION_LIMIT = 3000
BLOCK_LIMIT = 50
FALLBACK_LIMIT = 3000
QUOTE_LIMIT = 200
FEEDBACK_BLOCK = "lore_feedback"
COUNTS_BLOCK = "lore_feedback_counts"
SOURCE_PREFIX = "lore_source_"
ERROR_ANSWER = "Something went wrong while answering; please try again."
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
_BOLD_MARK = "\x00"


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """One message to post: fallback ``text`` (notifications) and the blocks."""

    text: str
    blocks: list[Block] = field(default_factory=list)


def escape(text: str) -> str:
    """Slack's three control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _inline(segment: str) -> str:
    segment = _LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1)}>", segment)
    segment = _BOLD.sub(lambda m: f"{_BOLD_MARK}{m.group(1) or m.group(2)}{_BOLD_MARK}", segment)
    segment = _ITALIC.sub(lambda m: f"_{m.group(1)}_", segment)
    segment = _STRIKE.sub(lambda m: f"~{m.group(1)}~", segment)
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
    """Markdown (as a language model writes it) to Slack mrkdwn; code stays untouched."""
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
    return "\n".join(out)


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


def source_line(citation: Citation) -> str:
    """``[n] <url|title>`` and a short quote underneath."""
    title = escape(shorten(citation.title, 150))
    url = citation.source_url or ""
    link = f"<{url}|{title}>" if url.startswith(("http://", "https://")) else f"*{title}*"
    quote = escape(shorten(citation.quote, QUOTE_LIMIT)) if citation.quote.strip() else ""
    return f"*[{citation.n}]* {link}" + (f"\n>{quote}" if quote else "")


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
        blocks.append(context(f"ℹ️ {escape(answer.notice)}"))
    blocks.extend(section(piece) for piece in split_text(to_mrkdwn(answer.text)))
    if answer.mode == "extractive" and answer.citations:
        blocks.append(context(EXTRACTIVE))
    if answer.mode == "llm" and not answer.grounded and not answer.abstained:
        blocks.append(context(NOT_GROUNDED))
    if answer.citations:
        blocks.append({"type": "divider"})
        blocks.append(section("*Sources*", block_id="lore_sources"))
        blocks.extend(
            section(source_line(c), block_id=f"{SOURCE_PREFIX}{c.n}") for c in answer.citations
        )
    if buttons and answer.message_id is not None:
        blocks.append(feedback_block(str(answer.message_id)))
    return blocks


def answer_messages(answer: Answer, *, buttons: bool = True) -> list[SlackMessage]:
    """The answer as one or more messages of at most 50 blocks; buttons end the last one."""
    blocks = answer_blocks(answer, buttons=buttons)
    chunks = [blocks[i : i + BLOCK_LIMIT] for i in range(0, len(blocks), BLOCK_LIMIT)] or [[]]
    fallback = shorten(answer.text, FALLBACK_LIMIT) if answer.text.strip() else "(no answer)"
    return [
        SlackMessage(fallback if i == 0 else "(continued)", chunk) for i, chunk in enumerate(chunks)
    ]


def placeholder(namespaces: Sequence[str]) -> str:
    """``Searching <namespaces>…`` (just ``Searching…`` before core has said where)."""
    where = f" {', '.join(namespaces)}" if namespaces else ""
    return f"_Searching{escape(where)}…_"


def streaming(text_so_far: str) -> str:
    """The partial answer while it streams (one plain message, cut to fit)."""
    converted = to_mrkdwn(text_so_far)
    if len(converted) > SECTION_LIMIT:
        converted = converted[: SECTION_LIMIT - 1]
    return converted + " …"


def progress_text(filename: str, progress: Progress) -> str:
    detail = f" ({escape(progress.detail)})" if progress.detail else ""
    stage = f"{escape(progress.stage)} {progress.fraction:.0%}"
    return f"_Indexing {escape(filename)}: {stage}{detail}_"


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
    pieces = split_text(result.text)
    blocks = [section(p) for p in pieces][:BLOCK_LIMIT]
    return SlackMessage(shorten(result.text, FALLBACK_LIMIT) or "Done.", blocks)


def chart_comment(command_text: str) -> str:
    """The words posted with the usage chart in the admin's direct messages."""
    return f"Chart for `/lore {escape(command_text.strip())}`"


def with_note(message: SlackMessage, note: str) -> SlackMessage:
    """The same message with a one-line note (a context block) at the end."""
    blocks = [*message.blocks[: BLOCK_LIMIT - 1], context(note)]
    return SlackMessage(message.text, blocks)
