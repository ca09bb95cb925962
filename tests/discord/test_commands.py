"""The `/lore` application command tree is generated from core's registry."""

from __future__ import annotations

from typing import Any

import discord

from adapters.discord.commands import LoreGroup, LoreTree
from adapters.discord.events import command_request
from adapters.discord.render import markdown, render_rich
from core.commands import REGISTRY, Command, Invocation, Kind
from core.commands.rich import ChannelRef, RichText, Strong, line

OPTION_TYPES = {
    Kind.TEXT: 3,
    Kind.NAMESPACE: 3,
    Kind.DOCUMENT: 3,
    Kind.CHOICE: 3,
    Kind.INTEGER: 4,
    Kind.FLAG: 5,
    Kind.CHANNEL: 7,
    Kind.USER: 6,
    Kind.PHRASES: 3,
}
SAMPLES: dict[Kind, Any] = {
    Kind.TEXT: "some words",
    Kind.NAMESPACE: "hr",
    Kind.USER: "42",
    Kind.PHRASES: '"How do I x?" "Where is y?"',
    Kind.DOCUMENT: "00000000-0000-0000-0000-000000000007",
    Kind.INTEGER: 5,
    Kind.FLAG: True,
    Kind.CHANNEL: "123",
}


async def _nothing(interaction: discord.Interaction) -> None: ...


def schema() -> dict[str, Any]:
    """What the bot syncs: the `/lore` command as Discord's API receives it."""
    tree = LoreTree(discord.Client(intents=discord.Intents.none()), run=_nothing)
    tree.add_command(LoreGroup(_nothing))
    lore = tree.get_command("lore")
    assert lore is not None
    return lore.to_dict(tree)


def find(node: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for name in path:
        node = next(o for o in node["options"] if o["name"] == name)
    return node


def test_every_registry_command_is_in_the_tree_with_its_options() -> None:
    lore = schema()
    for command in REGISTRY:
        node = find(lore, command.path)
        assert node["type"] == 1 and node["description"] == command.description
        assert ("(admins)" in node["description"]) == command.admin_only
        options = {o["name"]: o for o in node.get("options", [])}
        assert set(options) == {p.name for p in command.params}, command.name
        for param in command.params:
            option = options[param.name]
            assert option["type"] == OPTION_TYPES[param.kind], (command.name, param.name)
            assert option["required"] == param.required
            assert [c["value"] for c in option.get("choices", [])] == list(param.choices)
            if param.kind is Kind.INTEGER:
                assert (option.get("min_value"), option.get("max_value")) == (
                    param.minimum,
                    param.maximum,
                )
    groups = {c.path[0] for c in REGISTRY if len(c.path) == 2}
    assert {o["name"] for o in lore["options"] if o["type"] == 2} == groups
    for name in groups:
        assert find(lore, (name,))["description"] == REGISTRY.groups[name]


def _payload(command: Command) -> dict[str, Any]:
    options = [
        {"name": p.name, "type": OPTION_TYPES[p.kind], "value": _sample(p.kind, p.choices)}
        for p in command.params
    ]
    for i, name in reversed(list(enumerate(command.path))):
        options = [
            {"name": name, "type": 1 if i == len(command.path) - 1 else 2, "options": options}
        ]
    return {
        "name": "lore",
        "options": options,
        "resolved": {
            "channels": {"123": {"id": "123", "name": "people", "type": 0}},
            "users": {"42": {"id": "42", "username": "ada", "global_name": "Ada"}},
        },
    }


def _sample(kind: Kind, choices: tuple[str, ...]) -> Any:
    return choices[0] if choices else SAMPLES[kind]


def test_every_command_of_the_tree_reads_its_options_straight_into_core() -> None:
    for command in REGISTRY:
        request = command_request(_payload(command))
        assert isinstance(request, Invocation), (command.name, request)
        assert request.command is command
        assert set(request.args) == {p.name for p in command.params}


def test_strong_and_channels_are_discord_markdown() -> None:
    said = RichText((line(ChannelRef("123", "people"), " now searches ", Strong("hr_team"), "."),))
    assert markdown(said) == r"<#123> now searches **hr\_team**."
    assert render_rich(said)[0].content == markdown(said)
    assert render_rich(RichText())[0].content == "Done."
