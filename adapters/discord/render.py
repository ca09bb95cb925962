"""Core results as Discord messages: 2,000-character pieces, a Sources embed, 👍/👎 buttons,
and "Share with NAMESPACE" buttons under a conversation's file.

Answers quote documents, and file names and titles are chosen by users, so Markdown masked
links in them are shown as ``label (<url>)`` with the URL visible, and file names have their
Markdown escaped. Mentions cannot ping: the client sends every message with
``allowed_mentions`` that allows none.
"""

from __future__ import annotations

import base64
import io
import re
import textwrap
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import discord

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
)
from core.enums import AnswerMode
from core.types import Answer, Citation, Progress

LIMIT = 2000
EMBED_LIMIT = 4096
QUOTE_CHARS = 150
CHART_FILENAME = "lorekeeper-usage.png"
_SENTENCE_END = re.compile(r"((?<=[.!?])[ \t]+|[ \t]*\n[ \t]*)")
_SCHEME = r"[a-zA-Z][a-zA-Z0-9+.-]*:"
_MASKED_LINK = re.compile(rf"\[([^\[\]\n]*)\]\(\s*<?({_SCHEME}[^()<>\s]+)>?[^()\n]*\)")
_LEFTOVER_LINK = re.compile(rf"\[(?=[^\n]*\]\(\s*<?{_SCHEME})")
_BRACKET = re.compile(r"(?<!\\)([\[\]])")  # not yet escaped
_SNOWFLAKE = re.compile(r"[0-9]{1,20}")
_FENCE_BREAK = "`\u200b``"  # three backticks in a table cannot close its code block


@dataclass
class Outgoing:
    """One message to send: content, embeds, and its buttons (feedback, or another view)."""

    content: str
    embeds: list[discord.Embed] = field(default_factory=list)
    feedback_for: uuid.UUID | None = None
    view: discord.ui.View | None = None

    def buttons(self) -> discord.ui.View | None:
        """The view to send with the message (feedback buttons come first)."""
        return feedback_view(self.feedback_for) if self.feedback_for else self.view


def split_content(text: str, limit: int = LIMIT) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at paragraphs, then sentences, then
    lines, then words; a single word longer than the limit is cut hard."""
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    pieces: list[str] = []
    for unit in _units(text, limit):
        if pieces and len(pieces[-1]) + len(unit.sep) + len(unit.text) <= limit:
            pieces[-1] += unit.sep + unit.text
        else:
            pieces.append(unit.text)
    return pieces


@dataclass(frozen=True, slots=True)
class _Unit:
    text: str
    sep: str


def _units(text: str, limit: int) -> list[_Unit]:
    """Break text into units no longer than ``limit``, remembering the separator before each."""
    out: list[_Unit] = []
    for paragraph in text.split("\n\n"):
        if len(paragraph) <= limit:
            out.append(_Unit(paragraph, "\n\n"))
            continue
        first = True
        for piece in _finer(paragraph, limit):
            out.append(_Unit(piece.text, "\n\n" if first else piece.sep))
            first = False
    return out


def _finer(paragraph: str, limit: int) -> list[_Unit]:
    """Sentences and lines of a long paragraph, each with the whitespace it followed."""
    parts = _SENTENCE_END.split(paragraph)
    units: list[_Unit] = []
    sep = " "
    for i, part in enumerate(parts):
        if i % 2:
            sep = "\n" if "\n" in part else " "
            continue
        units.extend(_words(part, limit, first_sep=sep))
    return units


def _words(line: str, limit: int, *, first_sep: str) -> list[_Unit]:
    if len(line) <= limit:
        return [_Unit(line, first_sep)]
    out: list[_Unit] = []
    current = ""
    for word in line.split(" "):
        while len(word) > limit:
            if current:
                out.append(_Unit(current, " "))
                current = ""
            out.append(_Unit(word[:limit], ""))
            word = word[limit:]
        if current and len(current) + 1 + len(word) > limit:
            out.append(_Unit(current, " "))
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        out.append(_Unit(current, " "))
    return [_Unit(u.text, first_sep if i == 0 else u.sep) for i, u in enumerate(out)]


def unmask(text: str) -> str:
    """Markdown masked links as ``label (<url>)``, so every link shows where it goes."""
    # What is left looks like a link the pattern could not take apart (nested parentheses in
    # the URL, say): an escaped bracket keeps Discord from making it one.
    return _LEFTOVER_LINK.sub(r"\\[", _show_urls(text))


def _show_urls(text: str) -> str:
    for _ in range(5):  # a link written inside another one's label needs a second pass
        text, found = _MASKED_LINK.subn(lambda m: f"{m.group(1)} (<{m.group(2)}>)", text)
        if not found:
            break
    return text


def plain(text: str) -> str:
    """Outside words (a file name, a line naming one) with no links and no Markdown."""
    # escape_markdown also escapes the bracket of anything still shaped like a link.
    return discord.utils.escape_markdown(_show_urls(text))


def answer_body(answer: Answer) -> str:
    """The answer text with its notice and labels (no sources: those go in the embed)."""
    parts = []
    if answer.notice:
        parts.append(f"-# ⚠️ {unmask(answer.notice)}")
    parts.append(unmask(answer.text))
    if answer.mode == AnswerMode.EXTRACTIVE and answer.citations:
        parts.append("-# Quoted from the sources (no language model was used).")
    if answer.mode == AnswerMode.LLM and not answer.grounded and not answer.abstained:
        parts.append("⚠️ This answer is not grounded in the sources; check it before relying on it.")
    return "\n\n".join(parts)


def link_url(url: str | None) -> str | None:
    """An http(s) URL that cannot end a ``[title](url)`` link early (None otherwise)."""
    if not url or not url.startswith(("http://", "https://")):
        return None
    for char, code in (("(", "%28"), (")", "%29"), ("<", "%3C"), (">", "%3E"), (" ", "%20")):
        url = url.replace(char, code)
    return "".join(url.split())


def source_line(c: Citation) -> str:
    title = _BRACKET.sub(r"\\\1", plain(" ".join(c.title.split())))
    url = link_url(c.source_url)
    head = f"**{c.n}.** [{title}]({url})" if url else f"**{c.n}.** {title}"
    quote = textwrap.shorten(" ".join(c.quote.split()), width=QUOTE_CHARS, placeholder="…")
    return f"{head}\n> {unmask(quote)}" if quote else head


def sources_embed(citations: Sequence[Citation]) -> discord.Embed | None:
    """Numbered title links with short quotes, cut to the embed's 4,096 characters."""
    if not citations:
        return None
    lines: list[str] = []
    used = 0
    for c in citations:
        line = source_line(c)
        if used + len(line) + 1 > EMBED_LIMIT:
            break
        lines.append(line)
        used += len(line) + 1
    return discord.Embed(title="Sources", description="\n".join(lines), color=0x5865F2)


def render_answer(answer: Answer) -> list[Outgoing]:
    """The messages of an answer; the last carries the sources and the feedback buttons."""
    pieces = split_content(answer_body(answer)) or ["…"]
    out = [Outgoing(p) for p in pieces]
    embed = sources_embed(answer.citations)
    if embed is not None:
        out[-1].embeds.append(embed)
    if answer.message_id is not None and not answer.abstained:
        out[-1].feedback_for = answer.message_id
    elif answer.message_id is not None and answer.ask_owner:
        out[-1].view = ask_owner_view(answer.message_id)
    return out


def render_text(text: str) -> list[Outgoing]:
    """A line from core (a refusal, a failure) that may name documents: links shown, never
    masked."""
    return [Outgoing(p) for p in split_content(unmask(text)) or ["Done."]]


def render_rich(text: RichText) -> list[Outgoing]:
    """A command's result as messages of at most 2,000 characters."""
    return [Outgoing(p) for p in split_content(markdown(text)) or ["Done."]]


def markdown(text: RichText) -> str:
    """Core's rich text as Discord Markdown: every word it holds is escaped, so only core's
    own markup (``**strong**``, code, ``<#channel>``) is markup and no link is masked."""
    return "\n".join(_markdown_block(b) for b in text.blocks)


def _markdown_block(block: Line | Preformatted) -> str:
    if isinstance(block, Preformatted):
        return "```\n" + block.text.replace("```", _FENCE_BREAK) + "\n```"
    return "".join(markdown_span(s) for s in block.spans)


def markdown_span(span: Span) -> str:
    match span:
        case Plain(text):
            return plain(text)
        case Strong(text):
            return f"**{plain(text)}**"
        case Code(text):
            return "`" + text.replace("`", "'") + "`"
        case ChannelRef(id=channel_id):
            return f"<#{channel_id}>" if _SNOWFLAKE.fullmatch(channel_id) else plain(span.label)
        case UserRef(id=user_id):
            return f"<@{user_id}>" if _SNOWFLAKE.fullmatch(user_id) else plain(span.label)
        case Link(url, label):
            safe = link_url(url)
            return f"{plain(label)} (<{safe}>)" if safe else plain(label)


def chart_file(png: bytes) -> discord.File:
    """The usage chart as an attachment (shown inline under the table)."""
    return discord.File(
        io.BytesIO(png), filename=CHART_FILENAME, description="Token use per row of the table"
    )


def placeholder(namespaces: Sequence[str]) -> str:
    where = ", ".join(namespaces) if namespaces else "the knowledge base"
    return f"🔎 Searching {where}…"


def preview(text_so_far: str) -> str:
    """The streamed answer so far, kept within one message."""
    text = unmask(text_so_far.strip()) + " ▌"
    return text if len(text) <= LIMIT else "…" + text[-(LIMIT - 1) :]


def progress_line(filename: str, progress: Progress) -> str:
    detail = f" ({plain(progress.detail)})" if progress.detail else ""
    return f"📄 {plain(filename)}: {progress.stage} {progress.fraction:.0%}{detail}"


# --- feedback buttons -----------------------------------------------------------------

FEEDBACK_TEMPLATE = r"lore:fb:(?P<vote>up|down):(?P<id>[0-9a-f]{8}-[0-9a-f-]{27})"


class FeedbackButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=FEEDBACK_TEMPLATE):
    """A 👍/👎 button whose custom_id carries the answer's message UUID.

    Registered with ``Client.add_dynamic_items``, so clicks on any answer ever posted are
    routed here, also after a restart (no per-message view needs to be re-added).
    """

    def __init__(self, message_id: uuid.UUID, value: int, *, count: int | None = None) -> None:
        vote = "up" if value > 0 else "down"
        emoji = "👍" if value > 0 else "👎"
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.secondary,
                label=f"{emoji} {count}" if count is not None else emoji,
                custom_id=f"lore:fb:{vote}:{message_id}",
            )
        )
        self.message_id = message_id
        self.value = value

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> FeedbackButton:
        return cls(uuid.UUID(match["id"]), 1 if match["vote"] == "up" else -1)

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.client.feedback_clicked(  # type: ignore[attr-defined]
            interaction, self.message_id, self.value
        )


def feedback_view(
    message_id: uuid.UUID, *, up: int | None = None, down: int | None = None
) -> discord.ui.View:
    """Persistent 👍/👎 buttons (no timeout), optionally showing the vote counts."""
    view = discord.ui.View(timeout=None)
    view.add_item(FeedbackButton(message_id, 1, count=up))
    view.add_item(FeedbackButton(message_id, -1, count=down))
    return view


# --- share buttons --------------------------------------------------------------------

# A custom_id holds at most 100 characters: the document's UUID goes as 22 base64url
# characters, so "lore:share:" + 22 + ":" + a 64-character namespace name fits (98).
_NAMESPACE = r"[a-z0-9][a-z0-9_-]{0,63}"
SHARE_TEMPLATE = rf"lore:share:(?P<doc>[A-Za-z0-9_-]{{22}}):(?P<ns>{_NAMESPACE})"
SHARE_BUTTONS = 5  # one row


def short_id(value: uuid.UUID) -> str:
    """A UUID in 22 URL-safe characters."""
    return base64.urlsafe_b64encode(value.bytes).decode().rstrip("=")


def from_short_id(text: str) -> uuid.UUID:
    """The UUID that :func:`short_id` wrote."""
    return uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=="))


class ShareButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=SHARE_TEMPLATE):
    """A button "Share with NAMESPACE" under the "Indexed …" message of a file that stayed in
    its conversation. Registered with ``Client.add_dynamic_items`` like
    :class:`FeedbackButton`, so it keeps working after a restart."""

    def __init__(self, document_id: uuid.UUID, namespace: str) -> None:
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.secondary,
                label=f"Share with {namespace}",
                custom_id=f"lore:share:{short_id(document_id)}:{namespace}",
            )
        )
        self.document_id = document_id
        self.namespace = namespace

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ShareButton:
        return cls(from_short_id(match["doc"]), match["ns"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.client.share_clicked(  # type: ignore[attr-defined]
            interaction, self.document_id, self.namespace
        )


def share_view(document_id: uuid.UUID | None, namespaces: Sequence[str]) -> discord.ui.View | None:
    """One persistent button per namespace the file may be shared with (None: no buttons)."""
    names = [n for n in namespaces if re.fullmatch(_NAMESPACE, n)]
    if document_id is None or not names:
        return None
    view = discord.ui.View(timeout=None)
    for name in names[:SHARE_BUTTONS]:
        view.add_item(ShareButton(document_id, name))
    return view


# --- owners who get asked -------------------------------------------------------------

ASK_OWNER_TEMPLATE = r"lore:owner:(?P<id>[A-Za-z0-9_-]{22})"
OWNER_SAVE_TEMPLATE = r"lore:osave:(?P<thread>[0-9]{1,20})"
ASK_OWNER_OFFER = "Not helpful? The owner of what this place searches can answer it here."
SAVE_OFFER = "thanks for answering. Save this thread so I can answer the question next time?"


class AskOwnerButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=ASK_OWNER_TEMPLATE):
    """ "Ask an owner" under an answer that could not help (persistent, like the feedback)."""

    def __init__(self, answer_id: uuid.UUID) -> None:
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.secondary,
                label="Ask an owner",
                custom_id=f"lore:owner:{short_id(answer_id)}",
            )
        )
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> AskOwnerButton:
        return cls(from_short_id(match["id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.client.ask_owner_clicked(  # type: ignore[attr-defined]
            interaction, self.answer_id
        )


class OwnerSaveButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=OWNER_SAVE_TEMPLATE):
    """ "Save thread", offered to the owner who answered in the thread they were asked in."""

    def __init__(self, thread_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.primary,
                label="Save thread",
                custom_id=f"lore:osave:{thread_id}",
            )
        )
        self.thread_id = thread_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> OwnerSaveButton:
        return cls(int(match["thread"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.client.owner_save_clicked(  # type: ignore[attr-defined]
            interaction, self.thread_id
        )


def ask_owner_view(answer_id: uuid.UUID) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(AskOwnerButton(answer_id))
    return view


def owner_save_view(thread_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(OwnerSaveButton(thread_id))
    return view


def only(user_id: str) -> discord.AllowedMentions:
    """Mentions that may ping ``user_id`` and nobody else."""
    users = [discord.Object(int(user_id))] if _SNOWFLAKE.fullmatch(user_id) else []
    return discord.AllowedMentions(everyone=False, roles=False, replied_user=False, users=users)


def mention(user_id: str) -> str:
    return f"<@{user_id}>" if _SNOWFLAKE.fullmatch(user_id) else "Owner"


def owner_mention(owner: str, namespace: str, question: str) -> str:
    """The thread's question put to its owner; the question is escaped and sent with
    :func:`only` the owner allowed, so nothing in it pings anyone else."""
    quoted = textwrap.shorten(" ".join(question.split()), width=1500, placeholder="…")
    return (
        f"{mention(owner)}, a question about {plain(namespace)} that I couldn't answer from "
        f"its documents:\n> {plain(quoted) or '(no text)'}\nCould you answer it here?"
    )


def save_suggestion(owner: str, member: str, namespace: str) -> str:
    """In the thread, to its namespace's owner (sent with :func:`only` the owner allowed):
    a member suggests saving it as knowledge."""
    by = f"<@{member}>" if _SNOWFLAKE.fullmatch(member) else "Someone"
    return (
        f"{mention(owner)}, {by} suggests saving this thread to Lorekeeper, so that "
        f"{plain(namespace)} can answer it next time."
    )


def save_offer(owner: str) -> str:
    return f"{mention(owner)}, {SAVE_OFFER}"
