"""The app manifest asks for exactly what the adapter uses."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from adapters.slack.actions import SHORTCUTS
from adapters.slack.app import COMMAND, EVENTS

ROOT = Path(__file__).resolve().parents[2]
# Web API method prefix (as the SDK spells it) -> the bot scopes it needs.
METHOD_SCOPES = {
    "chat_": {"chat:write"},
    "files_info": {"files:read"},
    "users_info": {"users:read"},
    "files_upload": {"files:write"},
    "conversations_open": {"im:write"},
    # an assistant thread's greeting (in the app's DM); a thread saved from a channel
    "conversations_replies": {"channels:history", "groups:history", "im:history"},
    "assistant_threads_": {"assistant:write"},
    # every kind of conversation the bot may be asked about
    "conversations_info": {"channels:read", "groups:read", "im:read", "mpim:read"},
}
EVENT_SCOPES = {
    "app_mention": "app_mentions:read",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.im": "im:history",
    "file_deleted": "files:read",
    # Slack's reference: "No scopes required!"
    "assistant_thread_started": None,
    "assistant_thread_context_changed": None,
}


def manifest() -> dict:
    return yaml.safe_load((ROOT / "deploy/slack/manifest.yml").read_text())


def test_scopes_are_exactly_those_the_code_and_events_need() -> None:
    m = manifest()
    source = "".join(p.read_text() for p in (ROOT / "adapters/slack").glob("*.py"))
    methods = r"\.((?:chat|files|users|conversations|reactions|assistant)_\w+)\("
    called = set(re.findall(methods, source))
    needed = {
        scope
        for method in called
        for p, scopes in METHOD_SCOPES.items()
        if method.startswith(p)
        for scope in scopes
    }
    assert needed == set().union(*METHOD_SCOPES.values()), called
    events = m["settings"]["event_subscriptions"]["bot_events"]
    needed |= {EVENT_SCOPES[e] for e in events} - {None}
    needed.add("commands")
    assert sorted(m["oauth_config"]["scopes"]["bot"]) == sorted(needed)


def test_events_command_and_interactivity_match_the_listeners() -> None:
    m = manifest()
    events = {e.split(".")[0] for e in m["settings"]["event_subscriptions"]["bot_events"]}
    assert events == set(EVENTS)
    assert [c["command"] for c in m["features"]["slash_commands"]] == [COMMAND]
    shortcuts = m["features"]["shortcuts"]
    assert [s["callback_id"] for s in shortcuts] == list(SHORTCUTS)
    assert all(s["type"] == "message" and s["name"] and s["description"] for s in shortcuts)
    panel = m["features"]["assistant_view"]
    assert panel["assistant_description"] and isinstance(panel["suggested_prompts"], list)
    assert m["settings"]["interactivity"]["is_enabled"] is True
    urls = {
        m["settings"]["event_subscriptions"]["request_url"],
        m["settings"]["interactivity"]["request_url"],
        m["features"]["slash_commands"][0]["url"],
    }
    assert len(urls) == 1 and urls.pop().endswith("/slack/events")
