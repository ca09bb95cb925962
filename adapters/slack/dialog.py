"""The "Save thread to Lorekeeper" dialog on Slack: a modal asking where to save the thread.

The shortcut's ``trigger_id`` opens it (views.open, which Slack accepts within 3 seconds of
the click). One static_select offers core's :class:`~core.types.SaveChoices`, preselected to
the place's default. ``private_metadata`` carries the thread (channel and root ts) and the
shortcut's ``response_url``; Slack hands the metadata back untouched in the
``view_submission``, so the outcome reaches the saver as the shortcut's answer would. A
submission names only a choice: core decides again whether its submitter may save there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from adapters.slack.events import Payload
from core.types import SaveChoices

CALLBACK = "lore_save_dialog"
BLOCK = "lore_save_into"
ACTION = "lore_save_into_pick"
MAX_OPTIONS = 100  # a static_select's options
OPTION_CHARS = 75  # an option's text
NOT_PICKED = "Choose where to save the thread."
NOT_OPENED = "I couldn't open the dialog in time; please use the shortcut again."


@dataclass(frozen=True, slots=True)
class Origin:
    """The thread a dialog saves, and where its outcome is told."""

    channel: str
    thread: str
    response_url: str


def save_dialog(choices: SaveChoices, origin: Origin) -> dict[str, Any]:
    """The modal view: a required choice of where to save, with the thread in its metadata."""
    options = [
        {"text": _plain(c.label[:OPTION_CHARS]), "value": c.value}
        for c in choices.choices[:MAX_OPTIONS]
    ]
    select: dict[str, Any] = {
        "type": "static_select",
        "action_id": ACTION,
        "placeholder": _plain("Choose a namespace"),
        "options": options,
    }
    chosen = [o for o in options if o["value"] == choices.chosen]
    if chosen:
        select["initial_option"] = chosen[0]
    metadata = {"channel": origin.channel, "thread": origin.thread, "url": origin.response_url}
    return {
        "type": "modal",
        "callback_id": CALLBACK,
        "title": _plain("Save thread"),
        "submit": _plain("Save"),
        "close": _plain("Cancel"),
        "private_metadata": json.dumps(metadata),
        "blocks": [
            {
                "type": "input",
                "block_id": BLOCK,
                "label": _plain("Save the thread into"),
                "element": select,
            }
        ],
    }


def picked(body: Payload) -> tuple[Origin, str] | None:
    """The thread and the chosen value of a ``view_submission`` of :func:`save_dialog`; None
    when it names no choice or no thread."""
    view = body.get("view") or {}
    try:
        metadata = json.loads(str(view.get("private_metadata") or "{}"))
    except ValueError:
        return None
    if not isinstance(metadata, dict):
        return None
    values = (view.get("state") or {}).get("values") or {}
    state = (values.get(BLOCK) or {}).get(ACTION) or {}
    found = [
        metadata.get("channel"),
        metadata.get("thread"),
        metadata.get("url"),
        (state.get("selected_option") or {}).get("value"),
    ]
    texts = [x for x in found if isinstance(x, str) and x]
    if len(texts) != len(found):
        return None
    channel, thread, url, value = texts
    return Origin(channel, thread, url), value


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}
