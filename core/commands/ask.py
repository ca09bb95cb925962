"""`/lore ask` and `/lore help`."""

from __future__ import annotations

import uuid

from core.commands.call import Call, CommandResult, Tools
from core.commands.definition import Command, Kind, Param
from core.commands.rich import verbatim
from core.types import IncomingMessage, Progress


class _SilentReply:
    """An answer to a command comes back whole: nothing is shown while it is written."""

    async def thinking(self, namespaces: object) -> None: ...
    async def stream(self, text_so_far: str) -> None: ...
    async def progress(self, progress: Progress) -> None: ...


async def ask(tools: Tools, call: Call) -> CommandResult:
    cmd = call.cmd
    key = cmd.event_id or uuid.uuid4().hex
    message = IncomingMessage(
        platform=cmd.platform,
        workspace_id=cmd.workspace_id,
        channel_id=cmd.channel_id,
        thread_id=f"cmd-{key}",
        author_id=cmd.user_id,
        text=call.text("question") or "",
        event_id=f"cmd:{key}",
        received_at=cmd.received_at,
        author_name=cmd.user_name,
        is_direct=cmd.is_direct,
        place_private=cmd.place_private,
        dm_workspaces=cmd.dm_workspaces,
    )
    answer = await tools.answers.answer(message, _SilentReply())
    return CommandResult(verbatim(answer.text), answer=answer)


COMMANDS = (
    Command(
        ("ask",),
        "answer privately",
        ask,
        params=(
            Param(
                "question",
                Kind.TEXT,
                "What you want to know",
                required=True,
                missing="Ask what? Try `/lore ask how do I reset my password?`",
            ),
        ),
    ),
    Command(("help",), "what Lorekeeper can do", None),
)
