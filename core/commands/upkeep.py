"""Settings of a namespace from chat (admins): its owner, the suggested prompts of the
assistant panel, and how long its channels' conversations are kept. All are audited, as
every admin command is."""

from __future__ import annotations

import re

from core.commands.arguments import split_words
from core.commands.call import Call, CommandResult, Tools
from core.commands.definition import Command, Kind, Param
from core.commands.rich import Code, RichText, Strong, UserRef, line
from core.db.records import PROMPTS_KEY, RETENTION_KEY

GROUP = ("retention", "How long conversations are kept")
MAX_PROMPTS = 4  # Slack's assistant panel shows up to four
MAX_PROMPT_CHARS = 200
MAX_RETENTION_DAYS = 3650
CLEAR = ("default", "off", "none")
_DAYS = re.compile(r"^(\d{1,5})d?$")
NAME = Param("name", Kind.NAMESPACE, "The namespace", required=True)


async def owner(tools: Tools, call: Call) -> CommandResult:
    ns = await tools.knowledge.namespace(call.place.knowledge.id, call.text("name") or "")
    person = call.user_arg()
    if person is None:
        await tools.knowledge.set_owner(ns.id, None)
        return CommandResult(RichText((line(Strong(ns.name), " has no owner now."),)))
    user = await tools.identity.user(call.workspace.id, person.id)
    await tools.knowledge.set_owner(ns.id, user.id)
    return CommandResult(
        RichText(
            (
                line(
                    UserRef(person.id, person.name),
                    " now owns ",
                    Strong(ns.name),
                    ": they see its gaps with ",
                    Code(f"/lore gaps {ns.name}"),
                    ".",
                ),
            )
        )
    )


async def prompts(tools: Tools, call: Call) -> CommandResult:
    ns = await tools.knowledge.namespace(call.place.knowledge.id, call.text("name") or "")
    given = [p.strip() for p in split_words(call.text("prompts") or "") if p.strip()]
    if len(given) > MAX_PROMPTS or any(len(p) > MAX_PROMPT_CHARS for p in given):
        return CommandResult(
            RichText(
                (
                    line(
                        f"Give at most {MAX_PROMPTS} prompts of up to {MAX_PROMPT_CHARS} "
                        "characters, each in quotes.",
                    ),
                )
            ),
            ok=False,
        )
    await tools.knowledge.set_config_value(ns.id, PROMPTS_KEY, given or None)
    if not given:
        return CommandResult(RichText((line(Strong(ns.name), " has no suggested prompts now."),)))
    return CommandResult(
        RichText(
            (
                line("Suggested prompts for ", Strong(ns.name), ":"),
                *(line("• ", p) for p in given),
            )
        )
    )


async def retention(tools: Tools, call: Call) -> CommandResult:
    ns = await tools.knowledge.namespace(call.place.knowledge.id, call.text("name") or "")
    period = (call.text("period") or "").lower()
    if period in CLEAR:
        await tools.knowledge.set_config_value(ns.id, RETENTION_KEY, None)
        return CommandResult(
            RichText((line(Strong(ns.name), " keeps conversations for the default period."),))
        )
    match = _DAYS.match(period)
    days = int(match.group(1)) if match else 0
    if not 1 <= days <= MAX_RETENTION_DAYS:
        return CommandResult(
            RichText(
                (
                    line(
                        f"The period is a number of days from 1 to {MAX_RETENTION_DAYS} (such as ",
                        Code("90d"),
                        "), or ",
                        Code("default"),
                        ".",
                    ),
                )
            ),
            ok=False,
        )
    await tools.knowledge.set_config_value(ns.id, RETENTION_KEY, days)
    return CommandResult(
        RichText(
            (
                line(
                    "Conversations in the channels that search ",
                    Strong(ns.name),
                    f" are now kept {days} days.",
                ),
            )
        )
    )


COMMANDS = (
    Command(
        ("namespace", "owner"),
        "name who is asked about a namespace's gaps",
        owner,
        (NAME, Param("user", Kind.USER, "The owner (left out: nobody)")),
        admin_only=True,
    ),
    Command(
        ("namespace", "prompts"),
        "set the suggested prompts of a namespace",
        prompts,
        (NAME, Param("prompts", Kind.PHRASES, "Prompts, each in quotes (none: clear them)")),
        admin_only=True,
        note=f'up to {MAX_PROMPTS}, each in quotes: "How do I ..." "Where is ..."',
    ),
    Command(
        ("retention", "set"),
        "how long a namespace's conversations are kept",
        retention,
        (
            Param("name", Kind.NAMESPACE, "The namespace", required=True, metavar="NAMESPACE"),
            Param(
                "period", Kind.TEXT, "Days, such as 90d, or default", required=True, metavar="DAYS"
            ),
        ),
        admin_only=True,
        note="days such as 90d, or default",
    ),
)
