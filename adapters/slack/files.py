"""Files and Slack: fetching shared files (``files.info`` for stubs, downloads with the bot
token) and sending one privately to a person (Slack has no ephemeral files)."""

from __future__ import annotations

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.events import SlackFile, slack_file
from core.errors import LorekeeperError

SCOPE_MISSING = (
    "I couldn't download {name}: Slack sent a sign-in page instead of the file. "
    "The Slack app needs the files:read scope (reinstall it after adding the scope)."
)
DOWNLOAD_FAILED = "I couldn't download {name} from Slack (HTTP {status}); please share it again."


class FileFetcher:
    """Downloads files the way Slack requires: ``Authorization: Bearer <bot token>``."""

    def __init__(
        self, client: AsyncWebClient, session: aiohttp.ClientSession, *, token: str, max_bytes: int
    ) -> None:
        self._client = client
        self._session = session
        self._token = token
        self._max_bytes = max_bytes

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

    async def download(self, file: SlackFile) -> bytes:
        """The file's bytes, at most ``max_bytes + 1`` (core rejects oversized files itself)."""
        assert file.download_url is not None
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with self._session.get(file.download_url, headers=headers) as response:
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
