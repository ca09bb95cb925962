"""`/lore` text on Slack: the grammar generated from core's registry, Slack's channel forms."""

from __future__ import annotations

import pytest

from adapters.slack.commands import parse, slack_channel
from core.commands import REGISTRY, ChannelArg, Invalid, Invocation, Kind, Param

WORDS = {
    Kind.TEXT: "some words",
    Kind.NAMESPACE: "hr",
    Kind.DOCUMENT: "00000000-0000-0000-0000-000000000007",
    Kind.INTEGER: "5,000",
    Kind.CHANNEL: "<#C0ABC12|people>",
    Kind.USER: "<@U0ABC12|ana>",
    Kind.PHRASES: '"How many vacation days?" "Who approves expenses?"',
}


def _written(param: Param) -> str:
    if param.kind is Kind.FLAG:
        return param.name
    value = param.choices[-1] if param.choices else WORDS[param.kind]
    return f"{param.keyword} {value}" if param.keyword else value


@pytest.mark.parametrize("command", list(REGISTRY), ids=lambda c: c.name)
def test_every_registry_command_parses_from_its_words(command) -> None:
    text = " ".join([*command.path, *(_written(p) for p in command.params)])
    request = parse(text)
    assert isinstance(request, Invocation) and request.command is command, text
    assert set(request.args) == {p.name for p in command.params}
    if command.params and all(not p.required for p in command.params):
        bare = parse(" ".join(command.path))
        assert isinstance(bare, Invocation) and not bare.args
    if any(p.required for p in command.params):
        assert isinstance(parse(" ".join(command.path)), Invalid)


def test_channels_arrive_escaped_or_as_typed() -> None:
    assert slack_channel("<#C0ABC12|people>") == ChannelArg("C0ABC12", "people")
    assert slack_channel("<#C0ABC12>") == ChannelArg("C0ABC12")
    assert slack_channel("#people") == ChannelArg("people")
    assert slack_channel("people") is None
    assert slack_channel("<@U123>") is None
    request = parse("namespace bind hr <#C0ABC12|people>")
    assert isinstance(request, Invocation)
    assert request.args == {"name": "hr", "channel": ChannelArg("C0ABC12", "people")}
    refused = parse("namespace bind hr <@U123>")
    assert isinstance(refused, Invalid)
