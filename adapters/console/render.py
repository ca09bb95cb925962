"""Render core results for a terminal: the answer, then numbered footnotes with quotes."""

from __future__ import annotations

import io
import re
import textwrap
from typing import Any

from core.enums import AnswerMode
from core.types import Answer, Citation

# C0 and C1 controls but newline and tab: an escape sequence in a document must not drive the
# terminal (move the cursor, retitle the window, rewrite what was printed).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def inert(text: str) -> str:
    """Outside text (documents, file names) as the terminal should show it: no controls."""
    return _CONTROL.sub("", text)


def footnote(c: Citation) -> str:
    where = f" <{inert(c.source_url)}>" if c.source_url else ""
    quote = textwrap.shorten(" ".join(inert(c.quote).split()), width=200, placeholder="…")
    return f'  [{c.n}] {inert(c.title)}{where}\n      "{quote}"'


def render_answer(answer: Answer, *, styled: bool = False, width: int = 88) -> str:
    """The answer, its notes and its numbered footnotes. ``styled`` (a terminal): the text's
    Markdown drawn with ``rich`` (bold, code, lists, quotes; a link as its text and its URL,
    never hidden) and wrapped at word boundaries to ``width``; else plain text as written, for
    pipes and scripts."""
    parts = []
    if answer.notice:
        parts.append(f"({answer.notice})")
    parts.append(markdown(inert(answer.text), width) if styled else inert(answer.text))
    if answer.mode == AnswerMode.EXTRACTIVE and answer.citations:
        parts.append("(quoted from the sources; set GROQ_API_KEY for written answers)")
    if not answer.grounded and not answer.abstained and answer.mode == AnswerMode.LLM:
        parts.append("Warning: this answer cites no source; check it before relying on it.")
    if answer.citations:
        parts.append("Sources:\n" + "\n".join(footnote(c) for c in answer.citations))
    return "\n\n".join(parts)


# what rich pads a line with: spaces inside or outside its style codes, up to the line's end
_PADDING = re.compile(r"(?:[ \t]|\x1b\[[0-9;]*m)+$", re.MULTILINE)


def markdown(text: str, width: int) -> str:
    """``text``'s Markdown as terminal text with ANSI styles, wrapped at word boundaries."""
    from rich.console import Console  # the styled path only: plain output never pays for it
    from rich.markdown import Markdown

    out = io.StringIO()
    console = Console(
        file=out, force_terminal=True, width=width, color_system="standard", highlight=False
    )
    console.print(Markdown(text, hyperlinks=False))
    return _PADDING.sub("\x1b[0m", out.getvalue()).strip("\n")


def answer_json(answer: Answer) -> dict[str, Any]:
    return {
        "answer": answer.text,
        "citations": [
            {
                "n": c.n,
                "document": str(c.document_id),
                "title": c.title,
                "quote": c.quote,
                "chunk_id": str(c.chunk_id),
                "source_url": c.source_url,
            }
            for c in answer.citations
        ],
        "abstained": answer.abstained,
        "grounded": answer.grounded,
        "mode": answer.mode,
        "notice": answer.notice,
        "usage": {
            "prompt_tokens": answer.usage.prompt_tokens,
            "completion_tokens": answer.usage.completion_tokens,
            "embedding_tokens": answer.usage.embedding_tokens,
            "cost_usd": str(answer.usage.cost_usd),
            "model": answer.usage.model,
        },
    }
