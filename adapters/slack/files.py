"""Files and Slack: fetching shared files (``files.info`` for stubs, downloads with the bot
token) and sending one privately to a person (Slack has no ephemeral files).

The bot token goes only to Slack: a download URL comes from an event or from ``files.info``, so
it is checked against Slack's file hosts (and the configured API origin, which tests point at a
local fake) before any request is made.
"""

from __future__ import annotations

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from yarl import URL

from adapters.slack.events import SlackFile, slack_file
from core.errors import LorekeeperError

SCOPE_MISSING = (
    "I couldn't download {name}: Slack sent a sign-in page instead of the file. "
    "The Slack app needs the files:read scope (reinstall it after adding the scope)."
)
DOWNLOAD_FAILED = "I couldn't download {name} from Slack (HTTP {status}); please share it again."
NOT_SLACK = (
    "I didn't download {name}: its download link does not point to Slack, "
    "and I only fetch files from Slack."
)
SLACK_FILE_HOSTS = frozenset({"files.slack.com", "slack-files.com"})
SLACK_DOMAIN = ".slack.com"


def is_slack_download(url: URL, *, api_url: str) -> bool:
    """True for https on Slack's file hosts (any ``*.slack.com``), or the configured API's
    exact origin (scheme, host and port)."""
    if not _web_origin(url) or url.user is not None or url.password is not None:
        return False
    host = (url.host or "").lower().rstrip(".")
    slack_host = host in SLACK_FILE_HOSTS or host.endswith(SLACK_DOMAIN)
    if slack_host and url.scheme == "https" and url.port == 443:
        return True
    try:
        api = URL(api_url)
    except ValueError:
        return False
    return _web_origin(api) and (url.scheme, host, url.port) == (
        api.scheme,
        (api.host or "").lower().rstrip("."),
        api.port,
    )


def _web_origin(url: URL) -> bool:
    return url.scheme in ("http", "https") and bool(url.host)


class FileFetcher:
    """Downloads files the way Slack requires: ``Authorization: Bearer <bot token>``."""

    def __init__(
        self,
        client: AsyncWebClient,
        session: aiohttp.ClientSession,
        *,
        token: str,
        max_bytes: int,
        api_url: str,
    ) -> None:
        self._client = client
        self._session = session
        self._token = token
        self._max_bytes = max_bytes
        self._api_url = api_url

    async def resolve(self, file: SlackFile) -> SlackFile:
        """Slack Connect channels send stubs (no URLs): ask ``files.info`` for the rest."""
        if not file.stub:
            return file
        try:
            response = await self._client.files_info(file=file.file_id)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else "unknown"
            raise LorekeeperError(
                f"I couldn't read the details of {file.name} from Slack ({error}).",
                reason=f"files.info failed: {error}",
            ) from None
        resolved = slack_file(response["file"])
        if resolved.stub:
            raise LorekeeperError(f"Slack gave me no download link for {file.name}.")
        return resolved

    def _checked_url(self, file: SlackFile) -> URL:
        """The download URL, refused (before any request) unless it is Slack's."""
        assert file.download_url is not None
        try:
            url = URL(file.download_url)
        except ValueError:
            url = URL()
        if not is_slack_download(url, api_url=self._api_url):
            host = (url.host or "?")[:100]  # the reason is logged by the caller
            raise LorekeeperError(
                NOT_SLACK.format(name=file.name), reason=f"download host refused: {host}"
            )
        return url

    async def download(self, file: SlackFile) -> bytes:
        """The file's bytes, at most ``max_bytes + 1`` (core rejects oversized files itself).

        aiohttp drops the Authorization header on a redirect to another origin, so a redirect
        cannot carry the token away either."""
        url = self._checked_url(file)
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with self._session.get(url, headers=headers) as response:
                if response.status != 200:
                    raise LorekeeperError(
                        DOWNLOAD_FAILED.format(name=file.name, status=response.status)
                    )
                if response.content_type == "text/html" and file.mimetype != "text/html":
                    raise LorekeeperError(
                        SCOPE_MISSING.format(name=file.name), reason="download returned HTML"
                    )
                data = bytearray()
                async for chunk in response.content.iter_chunked(1 << 16):
                    data += chunk
                    if len(data) > self._max_bytes:
                        break
        except aiohttp.ClientError as exc:
            raise LorekeeperError(
                f"I couldn't download {file.name} from Slack; please share it again.",
                reason=f"download failed: {type(exc).__name__}",
            ) from None
        return bytes(data)


async def send_privately(
    client: AsyncWebClient,
    user_id: str,
    data: bytes,
    *,
    filename: str,
    title: str,
    comment: str,
) -> str:
    """Upload ``data`` into the bot's direct messages with ``user_id``; returns that channel.

    Slack has no ephemeral files: a file shared in a channel is seen by everyone there, so a
    private report goes to a DM (``conversations.open``, then the external upload flow:
    ``files.getUploadURLExternal``, the upload, ``files.completeUploadExternal``).
    """
    opened = await client.conversations_open(users=user_id)
    channel = str(opened["channel"]["id"])
    await client.files_upload_v2(
        channel=channel, file=data, filename=filename, title=title, initial_comment=comment
    )
    return channel
