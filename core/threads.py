"""A chat thread saved as knowledge: its people's messages, with authors and times, as one
Markdown document titled from its first message.

Adapters read the thread (Slack's conversations.replies, a Discord thread's history), leave
out every bot's posts, and hand over :class:`ThreadPost` values; ``UploadService.save_thread``
renders them here and indexes the result like an uploaded file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

TITLE_CHARS = 80
MAX_POSTS = 1000  # a thread longer than this is saved from its first posts
_SPACE = re.compile(r"\s+")
# Characters that would make the file name unsafe or the Markdown title misread.
_UNSAFE_NAME = re.compile(r"[\\/:*?\"<>|#\x00-\x1f]")


@dataclass(frozen=True, slots=True)
class ThreadPost:
    """One person's message in a thread, as the platform shows it."""

    author: str
    posted_at: datetime
    text: str


@dataclass(frozen=True, slots=True)
class SavedThread:
    """A thread as a document: its title, the file name it is indexed under, its Markdown."""

    title: str
    filename: str
    markdown: str


def title_of(posts: Sequence[ThreadPost]) -> str:
    """The first message's first line, shortened to :data:`TITLE_CHARS`."""
    first = next((p.text for p in posts if p.text.strip()), "")
    line = _SPACE.sub(" ", first.strip().splitlines()[0] if first.strip() else "").strip()
    line = line.lstrip("#").strip() or "Saved thread"
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


def render_thread(posts: Sequence[ThreadPost]) -> SavedThread:
    """The thread as Markdown: ``# <title>`` then ``**Author** (YYYY-MM-DD HH:MM): text``."""
    kept = [p for p in posts if p.text.strip()][:MAX_POSTS]
    title = title_of(kept)
    lines = [f"# {title}", ""]
    for post in kept:
        author = _SPACE.sub(" ", post.author).replace("*", "").strip() or "someone"
        when = post.posted_at.strftime("%Y-%m-%d %H:%M")
        lines += [f"**{author}** ({when}): {post.text.strip()}", ""]
    name = _UNSAFE_NAME.sub("", title).strip(" .") or "Saved thread"
    return SavedThread(title=title, filename=f"{name[:TITLE_CHARS]}.md", markdown="\n".join(lines))
