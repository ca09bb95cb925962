"""The LLM port implemented with the Groq SDK (OpenAI-compatible chat completions)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import groq
import httpx

from core.errors import ConfigError, LLMUnavailable
from core.generation.base import ChatMessage, Completion, OnDelta

log = logging.getLogger(__name__)

DEFAULT_MODEL = "llama-3.3-70b-versatile"
CHAT_PATH = "/openai/v1/chat/completions"
_CHARS_PER_TOKEN = 4

RATE_LIMITED = "The language model is rate-limited right now. Please try again in a minute."
NOT_RESPONDING = "The language model is not responding. Please try again shortly."
UNREACHABLE = "The language model can't be reached right now. Please try again shortly."
KEY_REFUSED = "The Groq API key was refused. An admin needs to check the bot's configuration."
SERVER_ERROR = "The language model had an internal error. Please try again shortly."
REJECTED = "The language model rejected the request."
INTERRUPTED = "The language model stopped before finishing its answer. Please try again."
TOO_SLOW = "The language model was too slow to finish its answer. Please try again shortly."


class GroqLLM:
    """A Groq chat model. Streams when ``on_delta`` is given; any failure is ``LLMUnavailable``.

    ``timeout`` is the budget of one question's LLM work in seconds: its calls, their retries
    and streams together. Each call runs under ``asyncio.timeout`` until the question's
    deadline, which ends whatever is in flight then: an attempt that hangs, the SDK's wait
    before a retry, a stream that trickles. The SDK's own per-attempt timeout is the whole
    budget, so it never fires first (the SDK never retries a timeout), while its
    ``max_retries`` retries of 408/409/429/5xx and connection errors, honouring
    ``retry-after-ms`` / ``retry-after``, go on as long as time is left. A call made after
    the deadline fails at once, without a request. The key never appears in an error or a
    log line.
    """

    def __init__(
        self,
        api_key: str,
        *,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 2,
    ) -> None:
        if not api_key:
            raise ConfigError("The Groq API key is not set.")
        self._model = model
        self._secret = api_key
        self._timeout = timeout
        self._client = groq.AsyncGroq(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            http_client=groq.DefaultAioHttpClient(timeout=timeout),
        )

    @property
    def model(self) -> str:
        return self._model

    @property
    def timeout(self) -> float:
        return self._timeout

    async def close(self) -> None:
        """Release the HTTP connection pool."""
        await self._client.close()

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        on_delta: OnDelta | None = None,
        max_tokens: int = 1024,
        temperature: float = 0.1,
        deadline: float | None = None,
    ) -> Completion:
        """Generate a reply; with ``on_delta`` each text delta is awaited as it arrives."""
        left = self._timeout if deadline is None else deadline - time.monotonic()
        if left <= 0:
            raise self._out_of_time(NOT_RESPONDING, "budget spent before the call")
        payload: list[Any] = [{"role": str(m.role), "content": m.content} for m in messages]
        started = time.perf_counter()
        parts: list[str] = []
        budget = asyncio.timeout(left)
        try:
            async with budget:
                if on_delta is None:
                    text, usage = await self._once(payload, max_tokens, temperature)
                else:
                    text, usage = await self._stream(
                        payload, on_delta, parts, max_tokens, temperature
                    )
        except TimeoutError:
            if not budget.expired():
                raise  # not ours (on_delta's, say)
            # A stream cut at the deadline fails like any broken stream: the caller answers
            # from the sources, since a cut-off answer may stop mid-sentence or before its
            # citations. TOO_SLOW tells the reader why the text they saw was replaced.
            raise self._out_of_time(TOO_SLOW if parts else NOT_RESPONDING, "timeout") from None
        except (groq.GroqError, httpx.HTTPError) as exc:
            raise self._unavailable(exc) from None
        latency_ms = round((time.perf_counter() - started) * 1000)
        if usage is None:
            usage = _estimate(messages, text)
            log.info("groq returned no usage for %s; tokens estimated at ~4 chars", self._model)
        return Completion(text, self._model, usage[0], usage[1], latency_ms)

    async def _once(
        self, payload: list[Any], max_tokens: int, temperature: float
    ) -> tuple[str, tuple[int, int] | None]:
        response = await self._client.chat.completions.create(
            model=self._model,
            messages=payload,
            max_completion_tokens=max_tokens,
            temperature=temperature,
        )
        text = (response.choices[0].message.content or "") if response.choices else ""
        usage = response.usage
        return text, (usage.prompt_tokens, usage.completion_tokens) if usage else None

    async def _stream(
        self,
        payload: list[Any],
        on_delta: OnDelta,
        parts: list[str],
        max_tokens: int,
        temperature: float,
    ) -> tuple[str, tuple[int, int] | None]:
        """Stream through the SDK's own request path (auth, retries with retry-after, status
        errors, timeouts) with its documented ``post`` for raw requests, and read the
        server-sent events ourselves. ``chat.completions.create`` costs more CPU per call than
        the rest of a question's path: it walks every parameter through its type-driven
        transform and builds a pydantic model per streamed chunk (docs/benchmarks.md)."""
        body = {
            "model": self._model,
            "messages": payload,
            "max_completion_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        usage: tuple[int, int] | None = None
        response = await self._client.post(
            CHAT_PATH, cast_to=httpx.Response, body=body, stream=True, stream_cls=None
        )
        try:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue  # blank separators, comments, event names
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                event = _event(data, response.request)
                delta = _delta(event)
                if delta:
                    parts.append(delta)
                    await on_delta(delta)
                final = _usage(event)
                if final is not None:
                    usage = final
        finally:
            await response.aclose()
        return "".join(parts), usage

    def _unavailable(self, exc: BaseException) -> LLMUnavailable:
        user_message, kind = _classify(exc)
        status = getattr(exc, "status_code", None)
        detail = str(exc).replace(self._secret, "***")[:300]
        reason = f"groq {kind} (model={self._model}, status={status}): {detail}"
        log.warning("%s", reason)
        return LLMUnavailable(user_message, reason=reason)

    def _out_of_time(self, user_message: str, kind: str) -> LLMUnavailable:
        reason = f"groq {kind} (model={self._model}, budget={self._timeout:g} s)"
        log.warning("%s", reason)
        return LLMUnavailable(user_message, reason=reason)


def _classify(exc: BaseException) -> tuple[str, str]:
    """The user's sentence and a short kind for the log, per failure."""
    if isinstance(exc, groq.AuthenticationError | groq.PermissionDeniedError):
        return KEY_REFUSED, "auth"
    if isinstance(exc, groq.RateLimitError):
        return RATE_LIMITED, "rate-limit"
    if isinstance(exc, groq.APITimeoutError | httpx.TimeoutException) and not _refused(exc):
        return NOT_RESPONDING, "timeout"
    if isinstance(exc, groq.APIConnectionError | httpx.TransportError):
        return UNREACHABLE, "connection"
    if isinstance(exc, groq.APIStatusError):
        if exc.status_code >= 500:
            return SERVER_ERROR, "server-error"
        return REJECTED, "rejected"
    return INTERRUPTED, "stream-error"


def _refused(exc: BaseException) -> bool:
    """Whether a "timeout" is really a connection that failed at once. The aiohttp transport
    (httpx-aiohttp) reports every ``aiohttp.ClientConnectionError``, a refused connection or a
    dropped one included, as ``httpx.ConnectTimeout``; the original is in the cause chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, aiohttp.ServerTimeoutError | asyncio.TimeoutError):
            return False
        if isinstance(seen, aiohttp.ClientConnectionError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _event(data: str, request: httpx.Request) -> dict[str, Any]:
    """One stream event; an in-band error or a malformed event ends the stream as the SDK's
    own stream would (``groq.APIError``)."""
    try:
        event = json.loads(data)
    except ValueError:
        raise groq.APIError("malformed stream event", request, body=data[:200]) from None
    if not isinstance(event, dict):
        raise groq.APIError("malformed stream event", request, body=data[:200])
    error = event.get("error")
    if error:
        message = error.get("message") if isinstance(error, dict) else None
        raise groq.APIError(
            str(message or "An error occurred during streaming"), request, body=error
        )
    return event


def _delta(event: dict[str, Any]) -> str | None:
    choices = event.get("choices")
    if not choices or not isinstance(choices[0], dict):
        return None
    delta = choices[0].get("delta")
    content = delta.get("content") if isinstance(delta, dict) else None
    return content if isinstance(content, str) else None


def _usage(event: dict[str, Any]) -> tuple[int, int] | None:
    x_groq = event.get("x_groq")
    found = x_groq.get("usage") if isinstance(x_groq, dict) else None
    found = found or event.get("usage")
    if not isinstance(found, dict):
        return None
    try:
        return int(found.get("prompt_tokens") or 0), int(found.get("completion_tokens") or 0)
    except (TypeError, ValueError):
        return None


def _estimate(messages: Sequence[ChatMessage], text: str) -> tuple[int, int]:
    prompt_chars = sum(len(m.content) for m in messages)
    return -(-prompt_chars // _CHARS_PER_TOKEN), -(-len(text) // _CHARS_PER_TOKEN)
