"""Nothing from a document drives the terminal: control characters never reach it."""

from __future__ import annotations

import asyncio
import io
import uuid

from adapters.console.chat import ConsoleReply
from adapters.console.render import render_answer
from core.types import Answer, Citation, Progress

HOSTILE = "Reset\x1b[2J your \x1b]0;pwned\x07password\x9b31m now.\tTabs\nand lines stay."


def test_answers_footnotes_and_progress_carry_no_control_characters() -> None:
    citation = Citation(1, uuid.uuid4(), uuid.uuid4(), "evil\x1b[31m.md", HOSTILE)
    shown = render_answer(Answer(text=HOSTILE, citations=(citation,), mode="extractive"))
    out = io.StringIO()
    reply = ConsoleReply(out)
    asyncio.run(reply.stream(HOSTILE))
    asyncio.run(reply.progress(Progress("reading", 0.0, "evil\x1b[31m.md")))
    for text in (shown, out.getvalue()):
        assert not any((ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F for c in text)
    assert "Reset[2J your ]0;pwnedpassword31m now.\tTabs\nand lines stay." in shown
    assert "evil[31m.md" in shown
