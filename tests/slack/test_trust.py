"""What outside text, outside hosts and outside workspaces cannot do through the Slack adapter:
ping or link from a document or a file name, receive the bot token, get a rejected request's
body into the logs, or vote on another workspace's answer."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import func, select
from yarl import URL

from adapters.slack.files import is_slack_download
from adapters.slack.verification import REJECTED
from core.db.models import Feedback
from tests.fakes.slack_server import BOT_USER
from tests.scenarios.driver import Thread
from tests.scenarios.suite import HANDBOOK
from tests.slack.conftest import running_bot
from tests.slack.driver import SlackDriver

HOSTILE_NAME = "<!channel> [x](https://evil.example).md"
HOSTILE_TEXT = (
    b"# IT help\n\n"
    b"Reset your password on [the IT portal](https://it.example.com) and tell <!here> "
    b"@everyone <@U123> <!subteam^S0ADMINS> @channel about the password reset.\n"
)
PERMALINKS = "https://lore.slack.com/files/"
LINK = re.compile(r"<(https?://[^|>]*)\|")
ROOM_WORD = re.compile(r"@(?:channel|here|everyone)", re.IGNORECASE)


def texts(value: Any) -> Iterator[str]:
    """Every ``text`` string in a Web API call's params or a response_url body."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                yield item
            else:
                yield from texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from texts(item)


def everything_shown(bot: SlackDriver) -> list[str]:
    sent = (
        "chat.postMessage",
        "chat.update",
        "chat.postEphemeral",
        "chat.startStream",
        "chat.appendStream",
        "chat.stopStream",
    )
    shown = [t for c in bot.slack.calls if c.method in sent for t in texts(c.params)]
    return shown + [t for bodies in bot.slack.responses.values() for t in texts(bodies)]


async def test_nothing_from_a_document_or_a_file_name_pings_or_links(sqlite_slack) -> None:
    bot = sqlite_slack
    thread = await bot.upload(HOSTILE_NAME, HOSTILE_TEXT)
    await bot.say_in_thread(thread, "How do I reset my password?", mention=True)
    await bot.bot_messages(thread)
    await bot.command("docs list", admin=True)
    shown = everything_shown(bot)
    for text in shown:
        assert "<!" not in text and "<@" not in text, text
        assert not ROOM_WORD.search(text), text
        assert all(url.startswith(PERMALINKS) for url in LINK.findall(text)), text
    joined = "\n".join(shown)
    assert "the IT portal (https://it.example.com)" in joined  # the URL is visible
    assert "&lt;!channel&gt;" in joined  # the file name is shown, escaped


class Recorder:
    """A second loopback server (not Slack) that notes every request it gets."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Recorder:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._any)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _any(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path, dict(request.headers)))
        return web.Response(body=HANDBOOK, content_type="text/plain")


def test_only_slack_file_hosts_and_the_api_origin_are_trusted() -> None:
    api = "http://127.0.0.1:5555/api/"
    trusted = [
        "https://files.slack.com/files-pri/T1-F1/a.md",
        "https://slack-files.com/T1-F1-abc",
        "https://acme.slack.com/files/U1/F1/a.md",
        "https://FILES.SLACK.COM./a",
        "http://127.0.0.1:5555/files-pri/T1-F1/a.md",
    ]
    refused = [
        "http://files.slack.com/a",
        "https://files.slack.com:8443/a",
        "https://files.slack.com.evil.example/a",
        "https://files.slack.com@evil.example/a",
        "https://user:pw@files.slack.com/a",
        "https://evil.example/?files.slack.com",
        "http://127.0.0.1:5556/files-pri/x",
        "https://127.0.0.1:5555/files-pri/x",
        "http://localhost:5555/files-pri/x",
        "ftp://files.slack.com/a",
        "/files-pri/x",
    ]
    assert all(is_slack_download(URL(u), api_url=api) for u in trusted)
    assert not any(is_slack_download(URL(u), api_url=api) for u in refused)


async def test_the_token_goes_to_slack_only(sqlite_slack, caplog) -> None:
    bot = sqlite_slack
    async with Recorder() as elsewhere:
        shared = bot.slack.add_file("handbook.md", HANDBOOK)
        shared["url_private"] = shared["url_private_download"] = f"{elsewhere.url}/handbook.md"
        stub = bot.slack.add_file("faq.md", HANDBOOK, stub=True)  # files.info names elsewhere
        bot.slack.files[stub["id"]]["url_private_download"] = f"{elsewhere.url}/faq.md"
        threads = []
        for entry in (shared, stub):
            event = bot.message_event(f"<@{BOT_USER}>", user="U1", channel="C1", files=[entry])
            await bot.send_event(event)
            threads.append(Thread("C1", event["ts"]))
        await bot.bot.idle()
        assert elsewhere.requests == []
    for thread in threads:
        last = (await bot.bot_messages(thread))[-1]
        assert "does not point to Slack" in last.text
    assert bot.slack.downloads == []
    refusals = [r.getMessage() for r in caplog.records if "download host refused" in r.getMessage()]
    assert len(refusals) == 2 and all("127.0.0.1" in r for r in refusals)
    assert not any(bot.slack.bot_token in r.getMessage() for r in caplog.records)
    thread = await bot.upload("handbook.md", HANDBOOK)  # the fake Slack is SLACK_API_URL's origin
    assert "Indexed handbook.md" in (await bot.bot_messages(thread))[-1].text


async def test_a_rejected_request_body_is_never_logged(
    sqlite_databases, tmp_path, embedder, caplog
) -> None:
    caplog.set_level(logging.DEBUG)  # before the app exists: bolt copies the root's level
    url = sqlite_databases.create(tmp_path / "r.db")
    async with running_bot(url, tmp_path, embedder) as bot:
        secret = "the launch code is 4242-alpha"
        event = bot.message_event(f"<@{BOT_USER}> {secret}", user="U1", channel="C1")
        body = json.dumps(bot.envelope(event))
        headers = bot.signed_headers(body, "application/json")
        headers["X-Slack-Signature"] = forged = "v0=" + "1" * 64
        async with bot.http.post(bot.url, data=body, headers=headers) as resp:
            assert resp.status == 401
        command = urlencode(bot.command_body(secret, user="U1", channel="C1", key="k"))
        headers = bot.signed_headers(command, "application/x-www-form-urlencoded", timestamp=1)
        async with bot.http.post(bot.url, data=command, headers=headers) as resp:
            assert resp.status == 401
    logged = [r.getMessage() for r in caplog.records]
    assert not any("4242-alpha" in m or "launch" in m or forged in m for m in logged)
    assert logged.count(REJECTED) == 2


async def test_a_vote_from_another_workspace_is_refused(sqlite_slack) -> None:
    bot = sqlite_slack
    await bot.upload("handbook.md", HANDBOOK)
    thread = await bot.mention("How are travel expenses reimbursed?")
    await bot.bot_messages(thread)
    answer = [m for m in bot.slack.thread(thread.channel, thread.thread) if m["blocks"]][-1]
    payload = bot.button_payload(answer, "lore_feedback_down", user="U9")
    payload["team"]["id"] = payload["user"]["team_id"] = "T0OTHER"
    status, _ = await bot.post(
        urlencode({"payload": json.dumps(payload)}),
        content_type="application/x-www-form-urlencoded",
    )
    assert status == 200
    await bot.bot.idle()
    async with bot.container.database.session() as db:
        assert (await db.execute(select(func.count()).select_from(Feedback))).scalar_one() == 0
    [told] = bot.slack.ephemerals
    assert told["user"] == "U9" and "couldn't record that vote" in told["text"]
    shown = bot.slack.messages[(answer["channel"], answer["ts"])]
    assert not any(b.get("block_id") == "lore_feedback_counts" for b in shown["blocks"])
    await bot.click_feedback(thread, 1)  # the answer's own workspace still votes
    async with bot.container.database.session() as db:
        assert (await db.execute(select(func.count()).select_from(Feedback))).scalar_one() == 1
