"""What a `/lore` command is: a path, typed parameters, who may run it, a help line, a handler.

Every platform's surface is generated from these definitions (Slack's text grammar, Discord's
application command tree, the help text), so a command is written once.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.commands.call import Call, CommandResult, Tools


class Kind(enum.Enum):
    """What a parameter holds, and so how it is parsed, validated and offered."""

    TEXT = "text"  # words; the last text parameter of a command takes the rest of the line
    NAMESPACE = "namespace"  # a namespace name (lowercase letters, digits, - and _)
    CHANNEL = "channel"  # a channel of the workspace (a ChannelArg: its platform id)
    CHOICE = "choice"  # one of ``choices``
    INTEGER = "integer"  # a whole number at least ``minimum`` (commas allowed in text)
    DOCUMENT = "document"  # a document id (a UUID, from `/lore docs list`)
    FLAG = "flag"  # present or not (in text: the parameter's name as a word)
    USER = "user"  # a person of the workspace (a UserArg: their platform id)
    PHRASES = "phrases"  # quoted phrases ("a b" "c"); in text, the rest of the line


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter. ``keyword``: in text, a word that comes before the value ("by user").
    ``strict``: a choice outside ``choices`` is refused (else the handler judges it; the
    choices are then suggestions). ``minimum`` is checked; ``maximum`` is offered to the
    platforms (Discord's option limit) and the handler says what is too large. ``missing``:
    what to say when a required one is absent (one of core's sentences)."""

    name: str
    kind: Kind
    help: str
    required: bool = False
    choices: tuple[str, ...] = ()
    keyword: str | None = None
    strict: bool = True
    minimum: int | None = None
    maximum: int | None = None
    metavar: str | None = None
    missing: str | None = None

    @property
    def syntax(self) -> str:
        """How the parameter is written in a usage line: ``NAME``, ``[#channel]``, ``[ids]``."""
        if self.kind is Kind.FLAG:
            return f"[{self.name}]"
        shown = self.metavar or (
            "|".join(self.choices)
            if self.choices
            else "#channel"
            if self.kind is Kind.CHANNEL
            else "@user"
            if self.kind is Kind.USER
            else self.name.upper()
        )
        if self.keyword:
            shown = f"{self.keyword} {shown}"
        return shown if self.required else f"[{shown}]"


Handler = Callable[["Tools", "Call"], Awaitable["CommandResult"]]


@dataclass(frozen=True, slots=True)
class Command:
    """A `/lore` command. ``path`` is its words (``("namespace", "bind")``); ``help`` a short
    phrase ("make a channel search a namespace"); ``note`` follows the usage line when the
    arguments are wrong. ``audited``: written to the audit log although anyone may run it
    (admin-only commands always are). ``handler`` None: the command shows the help text,
    which needs no workspace."""

    path: tuple[str, ...]
    help: str
    handler: Handler | None
    params: tuple[Param, ...] = ()
    admin_only: bool = False
    audited: bool = False
    note: str = ""

    @property
    def name(self) -> str:
        return " ".join(self.path)

    @property
    def usage(self) -> str:
        """``/lore namespace bind NAME [#channel]``."""
        return " ".join(["/lore", *self.path, *(p.syntax for p in self.params)])

    @property
    def description(self) -> str:
        """One sentence for a platform's command picker (at most 100 characters)."""
        text = self.help[:1].upper() + self.help[1:]
        return (text + " (admins)" if self.admin_only else text)[:100]

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)
