"""The registry: every `/lore` command, found by its words, and the help text made from them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from core.commands.definition import Command
from core.commands.rich import Code, Line, RichText, Strong, line


class Registry:
    """Commands in the order help lists them. A command's path is one word (``ask``) or a
    group and a word (``namespace bind``); ``groups`` describes each group."""

    def __init__(self, commands: Sequence[Command], *, groups: Mapping[str, str]) -> None:
        self._commands = tuple(commands)
        self._by_path = {c.path: c for c in self._commands}
        if len(self._by_path) != len(self._commands):
            raise ValueError("two commands share a path")
        for c in self._commands:
            if not 1 <= len(c.path) <= 2 or (len(c.path) == 2 and c.path[0] not in groups):
                raise ValueError(f"command {c.name!r} is not one word or a known group and one")
        self.groups = dict(groups)

    def __iter__(self) -> Iterator[Command]:
        return iter(self._commands)

    def __len__(self) -> int:
        return len(self._commands)

    def get(self, path: Sequence[str]) -> Command | None:
        return self._by_path.get(tuple(path))

    def match(self, words: Sequence[str]) -> Command | None:
        """The command the first words name (lowercase words), if any."""
        return self._by_path.get(tuple(words[:2])) or self._by_path.get(tuple(words[:1]))

    @property
    def help_command(self) -> Command | None:
        return next((c for c in self._commands if c.handler is None), None)

    def help(self) -> RichText:
        """The commands anyone may run, then the admins' ones: usage and what each does."""
        shown = [c for c in self._commands if c.handler is not None]
        out: list[Line] = [line(Strong("Lorekeeper commands"))]
        out += [_help_line(c) for c in shown if not c.admin_only]
        out.append(line("Admins only:"))
        out += [_help_line(c) for c in shown if c.admin_only]
        return RichText(tuple(out))


def _help_line(command: Command) -> Line:
    return line(Code(command.usage), f": {command.help}")
