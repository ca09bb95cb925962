"""`/lore channel ...`: a channel's own settings (admins)."""

from __future__ import annotations

from core.commands.call import Call, CommandResult, Tools
from core.commands.definition import Command, Kind, Param
from core.commands.rich import ChannelRef, Code, Part, RichText, line
from core.errors import NotAllowed

GROUP = ("channel", "This channel's settings")
STATES = ("on", "off")
NOT_IN_DM = "Autoanswer is for channels: run it in the channel it should answer in."


async def autoanswer(tools: Tools, call: Call) -> CommandResult:
    """Turn the channel's autoanswer on or off (no argument: say whether it is on)."""
    if tools.autoanswer is None:
        raise NotAllowed("Autoanswer is not available here.", reason="no autoanswer store")
    if call.place.is_direct:
        raise NotAllowed(NOT_IN_DM, reason="autoanswer in a DM")
    state = call.text("state")
    channel = call.channel
    if state is not None:
        await tools.autoanswer.set_enabled(channel.id, state == "on")
    on = await tools.autoanswer.enabled(channel.id)
    return CommandResult(
        RichText((line(*_state(ChannelRef(channel.external_id, channel.name), on)),))
    )


def _state(where: ChannelRef, on: bool) -> list[Part]:
    if on:
        return [
            "Autoanswer is on in ",
            where,
            ": I answer top-level questions in a thread without a mention when the documents "
            "clearly answer them, and stay silent otherwise. Turn it off with ",
            Code("/lore channel autoanswer off"),
            ".",
        ]
    return [
        "Autoanswer is off in ",
        where,
        ": I answer only when mentioned. Turn it on with ",
        Code("/lore channel autoanswer on"),
        ".",
    ]


COMMANDS = (
    Command(
        ("channel", "autoanswer"),
        "answer confident questions here without a mention",
        autoanswer,
        (Param("state", Kind.CHOICE, "Turn it on or off", choices=STATES),),
        admin_only=True,
    ),
)
