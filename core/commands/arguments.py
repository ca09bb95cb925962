"""Typed arguments: what an adapter hands core for one `/lore` command.

:func:`bind` checks and converts the values of one command's parameters (from Discord's typed
options, a button, or words) and gives back an :class:`Invocation`, or :class:`Invalid` with
the sentence to show. :func:`parse_words` is the text grammar every text surface shares (Slack's
`/lore` text, the test harness): it is generated from the definitions, and the adapter says how
its platform writes a channel.
"""

from __future__ import annotations

import re
import shlex
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from core.commands.definition import Command, Kind, Param
from core.commands.rich import Code, RichText, line, rich

if TYPE_CHECKING:
    from core.commands.registry import Registry

MAX_INTEGER_DIGITS = 16
_NAMESPACE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_PLAIN_CHANNEL = re.compile(r"^<?#([A-Za-z0-9_-]{1,80})>?$")
_PLAIN_USER = re.compile(r"^<?@([A-Za-z0-9_-]{1,80})>?$")


@dataclass(frozen=True, slots=True)
class ChannelArg:
    """A channel named in a command, by its platform id (``name`` as the platform gave it)."""

    id: str
    name: str | None = None

    def __str__(self) -> str:
        return self.id


@dataclass(frozen=True, slots=True)
class UserArg:
    """A person named in a command, by their platform id (``name`` as the platform gave it)."""

    id: str
    name: str | None = None

    def __str__(self) -> str:
        return self.id


Value = str | int | bool | uuid.UUID | ChannelArg | UserArg
ChannelReader = Callable[[str], ChannelArg | None]
UserReader = Callable[[str], UserArg | None]


@dataclass(frozen=True, slots=True)
class Invocation:
    """A known command with checked, typed arguments (absent optional ones are left out)."""

    command: Command
    args: Mapping[str, Value] = field(default_factory=lambda: MappingProxyType({}))

    def text(self, name: str) -> str | None:
        value = self.args.get(name)
        return None if value is None else str(value)

    def audit(self) -> dict[str, str]:
        return {name: str(value) for name, value in self.args.items()}


@dataclass(frozen=True, slots=True)
class Invalid:
    """A known command whose arguments are wrong: ``message`` says how to write it."""

    command: Command
    message: RichText
    given: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Unknown:
    """Words that name no command (``text`` is what was typed, for the reply)."""

    text: str


Request = Invocation | Invalid | Unknown


class _Refused(Exception):
    def __init__(self, message: RichText) -> None:
        super().__init__()
        self.message = message


def bind(command: Command, values: Mapping[str, object]) -> Invocation | Invalid:
    """Check and convert ``values`` (strings, or already typed) for ``command``'s parameters;
    None and empty strings count as absent."""
    args: dict[str, Value] = {}
    given = tuple(str(v) for v in values.values() if v not in (None, ""))
    try:
        unknown = set(values) - {p.name for p in command.params}
        if unknown:
            raise _Refused(usage_message(command))
        for param in command.params:
            raw = values.get(param.name)
            if raw is None or raw == "" or (param.kind is Kind.FLAG and raw is False):
                if param.required:
                    raise _Refused(_missing(command, param))
                continue
            args[param.name] = _convert(command, param, raw)
    except _Refused as refused:
        return Invalid(command, refused.message, given)
    return Invocation(command, MappingProxyType(args))


def usage_message(command: Command) -> RichText:
    """``Usage: `/lore quota set ...` (note).``"""
    note = f" ({command.note})" if command.note else ""
    return RichText((line("Usage: ", Code(command.usage), note + "."),))


def _missing(command: Command, param: Param) -> RichText:
    if param.missing:
        return rich(param.missing)
    if param.kind is Kind.NAMESPACE:
        return rich("Which namespace? Give its name.")
    if param.kind is Kind.DOCUMENT:
        return _document_usage(command)
    return usage_message(command)


def _document_usage(command: Command) -> RichText:
    return RichText(
        (line("Usage: ", Code(command.usage), " (the id from ", Code("/lore docs list"), ")."),)
    )


def _convert(command: Command, param: Param, raw: object) -> Value:
    kind = param.kind
    if kind is Kind.FLAG:
        return True
    if kind is Kind.CHANNEL:
        if isinstance(raw, ChannelArg):
            return raw
        raise _Refused(usage_message(command))
    if kind is Kind.USER:
        if isinstance(raw, UserArg):
            return raw
        raise _Refused(usage_message(command))
    if kind is Kind.INTEGER:
        return _integer(command, param, raw)
    if kind is Kind.DOCUMENT:
        if isinstance(raw, uuid.UUID):
            return raw
        try:
            return uuid.UUID(str(raw))
        except ValueError:
            raise _Refused(_document_usage(command)) from None
    text = str(raw)
    if kind is Kind.NAMESPACE:
        text = text.lower()
        if not _NAMESPACE.match(text):
            raise _Refused(
                rich("A namespace name is lowercase letters, digits, - and _ (up to 64).")
            )
    if kind is Kind.CHOICE:
        text = text.lower()
        if param.strict and text not in param.choices:
            raise _Refused(usage_message(command))
    return text


def _integer(command: Command, param: Param, raw: object) -> int:
    if isinstance(raw, bool):
        raise _Refused(usage_message(command))
    if isinstance(raw, int):
        value = raw
    else:
        digits = str(raw).replace(",", "")
        if not digits.isdigit() or len(digits) > MAX_INTEGER_DIGITS:
            raise _Refused(usage_message(command))
        value = int(digits)
    if param.minimum is not None and value < param.minimum:
        raise _Refused(usage_message(command))
    return value


# --- text ---------------------------------------------------------------------------------


def plain_channel(word: str) -> ChannelArg | None:
    """A channel written ``#ID`` or ``<#ID>`` (the terminal's and the test harness's way)."""
    match = _PLAIN_CHANNEL.match(word)
    return ChannelArg(match.group(1)) if match else None


def plain_user(word: str) -> UserArg | None:
    """A person written ``@ID`` or ``<@ID>`` (the terminal's and the test harness's way)."""
    match = _PLAIN_USER.match(word)
    return UserArg(match.group(1)) if match else None


def split_words(text: str) -> list[str]:
    """Words as a shell splits them (quotes group words); unbalanced quotes split on spaces."""
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def parse_words(
    registry: Registry, text: str, *, channel: ChannelReader, user: UserReader = plain_user
) -> Request:
    """`/lore` text as a request: the command its first words name, then its parameters.

    Flags are their name anywhere; a keyword parameter is its keyword and the next word; the
    rest fill the positional parameters in order, and the last text parameter takes all the
    words left. Empty text asks for help.
    """
    words = split_words(text)
    found = registry.match([w.lower() for w in words]) if words else registry.help_command
    if found is None:
        return Unknown(text.strip())
    command = found
    rest = words[len(command.path) :] if words else []
    try:
        values = _assign(command, rest, _Readers(channel, user))
    except _Refused as refused:
        return Invalid(command, refused.message, tuple(rest))
    return bind(command, values)


@dataclass(frozen=True, slots=True)
class _Readers:
    channel: ChannelReader
    user: UserReader


def _assign(command: Command, words: list[str], readers: _Readers) -> dict[str, object]:
    values: dict[str, object] = {}
    left = list(words)
    for param in command.params:
        if param.kind is Kind.FLAG:
            hits = [w for w in left if w.lower() == param.name]
            if hits:
                values[param.name] = True
                left = [w for w in left if w.lower() != param.name]
        elif param.keyword:
            at = next((i for i, w in enumerate(left) if w.lower() == param.keyword), None)
            if at is not None:
                if at + 1 >= len(left):
                    raise _Refused(usage_message(command))
                values[param.name] = left[at + 1]
                del left[at : at + 2]
    positional = [p for p in command.params if p.kind is not Kind.FLAG and not p.keyword]
    for i, param in enumerate(positional):
        if not left:
            break
        last_text = param.kind in _REST and not any(p.kind in _REST for p in positional[i + 1 :])
        if last_text and param.kind is Kind.PHRASES:
            # quoted again, so the phrases keep their bounds: split them with split_words
            values[param.name], left = " ".join(shlex.quote(w) for w in left), []
        elif last_text:
            values[param.name], left = " ".join(left), []
        else:
            values[param.name] = _word(command, param, left.pop(0), readers)
    if left:
        raise _Refused(usage_message(command))
    return values


_REST = (Kind.TEXT, Kind.PHRASES)


def _word(command: Command, param: Param, word: str, readers: _Readers) -> object:
    if param.kind is Kind.USER:
        person = readers.user(word)
        if person is None:
            raise _Refused(RichText((line("I don't recognise the person ", word[:40], "."),)))
        return person
    if param.kind is not Kind.CHANNEL:
        return word
    found = readers.channel(word)
    if found is None:
        raise _Refused(RichText((line("I don't recognise the channel ", word[:40], "."),)))
    return found


def words_of(path: Sequence[str], values: Mapping[str, object]) -> str:
    """A command and its values as one line of words (to name an unknown command)."""
    return " ".join([*path, *(str(v) for v in values.values() if v not in (None, ""))])
