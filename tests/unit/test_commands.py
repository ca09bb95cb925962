"""The `/lore` registry: definitions, the text grammar made from them, help, rich text."""

from __future__ import annotations

import uuid

import pytest

from adapters.discord.render import markdown
from adapters.slack.render import mrkdwn
from core.commands import (
    REGISTRY,
    ChannelArg,
    Command,
    Invalid,
    Invocation,
    Kind,
    Param,
    Registry,
    Unknown,
    bind,
    parse_text,
)
from core.commands.rich import ChannelRef, Code, Link, RichText, Strong, line, plain_text, rich

DOC = uuid.UUID(int=7)


def args(text: str) -> dict[str, object]:
    request = parse_text(text)
    assert isinstance(request, Invocation), request
    return {"command": request.command.name, **request.args}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {"command": "help"}),
        ("HELP", {"command": "help"}),
        ("ask what's the policy?", {"command": "ask", "question": "what's the policy?"}),
        (
            "namespace create HR People handbook",
            {"command": "namespace create", "name": "hr", "description": "People handbook"},
        ),
        (
            "namespace bind hr #C123",
            {"command": "namespace bind", "name": "hr", "channel": ChannelArg("C123")},
        ),
        ("namespace uploads hr", {"command": "namespace uploads", "name": "hr"}),
        ("usage", {"command": "usage"}),
        ("usage ids 30d BY user", {"command": "usage", "period": "30d", "by": "user", "ids": True}),
        ("usage by model", {"command": "usage", "by": "model"}),
        (
            f"docs promote {DOC} general",
            {"command": "docs promote", "id": DOC, "namespace": "general"},
        ),
        (
            "quota set user-uploads 1,500",
            {"command": "quota set", "scope": "user-uploads", "limit": 1500},
        ),
    ],
)
def test_text_becomes_typed_arguments(text: str, expected: dict[str, object]) -> None:
    assert args(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("ask", "Ask what? Try /lore ask how do I reset my password?"),
        ("namespace bind", "Which namespace? Give its name."),
        ("namespace create a.b", "A namespace name is lowercase letters"),
        ("namespace bind hr general", "I don't recognise the channel general."),
        ("docs delete 12", "Usage: /lore docs delete ID (the id from /lore docs list)."),
        ("quota set user lots", "Usage: /lore quota set user|workspace|user-uploads|"),
        ("quota set team 5", "(tokens per day, up to 1,000,000,000,000)."),
        ("usage 7d by", "Usage: /lore usage [today|7d|30d] [by "),
        ("namespace info hr and more", "Usage: /lore namespace info NAME."),
    ],
)
def test_wrong_arguments_say_how_to_write_them(text: str, says: str) -> None:
    request = parse_text(text)
    assert isinstance(request, Invalid)
    assert says in plain_text(request.message)


def test_words_naming_no_command_are_unknown() -> None:
    assert parse_text("frobnicate now") == Unknown("frobnicate now")
    assert parse_text("namespace") == Unknown("namespace")
    assert parse_text("docs frobnicate") == Unknown("docs frobnicate")


def test_help_lists_every_command_with_its_usage_admins_last() -> None:
    shown = plain_text(REGISTRY.help()).splitlines()
    admins = shown.index("Admins only:")
    for command in REGISTRY:
        if command.handler is None:
            continue
        at = next(i for i, text in enumerate(shown) if text.startswith(command.usage + ":"))
        assert (at > admins) == command.admin_only, command.name
    assert "/lore namespace bind NAME [#channel]: make a channel search a namespace" in shown


def test_a_new_command_is_one_definition() -> None:
    async def handler(tools: object, call: object) -> object:
        raise AssertionError

    echo = Command(
        ("namespace", "echo"),
        "say it back",
        handler,  # type: ignore[arg-type]
        (Param("times", Kind.INTEGER, "How often", required=True, minimum=1),),
        admin_only=True,
    )
    registry = Registry((*REGISTRY, echo), groups=REGISTRY.groups)
    from core.commands.arguments import parse_words, plain_channel

    parsed = parse_words(registry, "namespace echo 3", channel=plain_channel)
    assert isinstance(parsed, Invocation) and parsed.args == {"times": 3}
    assert isinstance(bind(echo, {"times": 0}), Invalid)
    assert "`/lore namespace echo TIMES`: say it back" in mrkdwn(registry.help())
    with pytest.raises(ValueError, match="share a path"):
        Registry((*REGISTRY, echo, echo), groups=REGISTRY.groups)


def test_each_platform_renders_the_same_rich_text_in_its_own_markup() -> None:
    said = RichText(
        (
            line(ChannelRef("C0ABC12", "general"), " now searches ", Strong("hr"), "."),
            line(ChannelRef("123456789012345678", "general"), " ", Code("/lore help")),
            line(Link("https://example.com/a", "the *docs*")),
        )
    )
    slack, discord, terminal = mrkdwn(said), markdown(said), plain_text(said)
    assert slack.splitlines()[0] == "<#C0ABC12> now searches *hr*."
    # not a Discord id: the name, escaped so that a line starting "#" is no heading
    assert discord.splitlines()[0] == r"\#general now searches **hr**."
    assert terminal.splitlines()[0] == "#general now searches hr."
    assert slack.splitlines()[1] == "#general `/lore help`"
    assert discord.splitlines()[1] == "<#123456789012345678> `/lore help`"
    assert discord.splitlines()[2] == r"the \*docs\* (<https://example.com/a>)"
    assert slack.splitlines()[2] == "the *docs* (<https://example.com/a>)"
    assert terminal.splitlines()[2] == "the *docs* (https://example.com/a)"


def test_core_sentences_mark_code_with_backticks_only_when_core_says_so() -> None:
    assert rich("Try `/lore help`.").blocks[0] == line("Try ", Code("/lore help"), ".")
    assert plain_text(rich("a `b` c")) == "a b c"
