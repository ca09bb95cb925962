"""A small platform-neutral rich text: what a command says, before any platform's markup.

A :class:`RichText` is a sequence of lines; a line is a sequence of spans (plain words, strong
words, code, a channel, a person, a link) or one preformatted block (a table). Each adapter
renders it in its own markup (Slack mrkdwn, Discord Markdown); :func:`plain_text` renders it
for a terminal. Spans hold text as written: escaping is the renderer's job, so a title or a
description can never become markup.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Plain:
    text: str


@dataclass(frozen=True, slots=True)
class Strong:
    text: str


@dataclass(frozen=True, slots=True)
class Code:
    text: str


@dataclass(frozen=True, slots=True)
class ChannelRef:
    """A channel by its platform id; ``name`` is shown where the platform cannot link it."""

    id: str
    name: str | None = None

    @property
    def label(self) -> str:
        return f"#{self.name or self.id}"


@dataclass(frozen=True, slots=True)
class UserRef:
    """A person by their platform id (rendered so that it never notifies them)."""

    id: str
    name: str | None = None

    @property
    def label(self) -> str:
        return f"@{self.name or self.id}"


@dataclass(frozen=True, slots=True)
class Link:
    url: str
    label: str


Span = Plain | Strong | Code | ChannelRef | UserRef | Link
Part = str | Span


@dataclass(frozen=True, slots=True)
class Line:
    spans: tuple[Span, ...] = ()


@dataclass(frozen=True, slots=True)
class Preformatted:
    """A block shown in a fixed-width font, as written (a table)."""

    text: str


Block = Line | Preformatted


@dataclass(frozen=True, slots=True)
class RichText:
    blocks: tuple[Block, ...] = ()

    def __add__(self, other: RichText) -> RichText:
        return RichText(self.blocks + other.blocks)


def line(*parts: Part) -> Line:
    """A line of spans; a ``str`` is plain text."""
    return Line(tuple(Plain(p) if isinstance(p, str) else p for p in parts if p != ""))


def ticked(text: str) -> Line:
    """One of core's own sentences with `code` between backticks (never outside text)."""
    pieces = text.split("`")
    return line(*(Code(p) if i % 2 else p for i, p in enumerate(pieces)))


def rich(*blocks: Block | str) -> RichText:
    """A text of blocks; a ``str`` is one of core's own sentences (see :func:`ticked`)."""
    return RichText(tuple(ticked(b) if isinstance(b, str) else b for b in blocks))


def verbatim(text: str) -> RichText:
    """Text shown as written, line by line (outside words: backticks stay backticks)."""
    return RichText(tuple(line(t) for t in text.split("\n")))


def plain_span(span: Span) -> str:
    """A span as a terminal shows it."""
    match span:
        case Plain(text) | Strong(text) | Code(text):
            return text
        case ChannelRef() | UserRef():
            return span.label
        case Link(url, label):
            return f"{label} ({url})"


def plain_text(text: RichText) -> str:
    """The text without markup: channels as ``#name``, links with their URL shown."""
    out = [
        b.text if isinstance(b, Preformatted) else "".join(plain_span(s) for s in b.spans)
        for b in text.blocks
    ]
    return "\n".join(out)
