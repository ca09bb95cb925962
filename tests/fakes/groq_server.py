"""A fake Groq API (OpenAI-compatible chat completions) on 127.0.0.1, for tests and benchmarks.

    async with FakeGroq(responder=lambda messages: "Paris [1].") as fake:
        llm = GroqLLM("test-key", base_url=fake.base_url)
        fake.fail(429, times=2, retry_after_ms=5)   # then the responder answers
        ...
        fake.requests[-1]["messages"]              # what the client sent

Scripted behaviours are consumed one per request, in order; when the script is empty the
responder answers. ``latency`` delays every response's first byte, ``chunk_delay`` every
streamed chunk, so a benchmark can model a 0 s or a 1 s model. ``hang()`` and ``Trickle``
model an outage: a request that is accepted and never answered, and a response that never
ends (a token every ``interval`` seconds), so no single read ever times out.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Messages = list[dict[str, Any]]
Responder = Callable[[Messages], str | Awaitable[str]]

CHAT_PATH = "/openai/v1/chat/completions"
DEFAULT_ANSWER = "This is the fake model's answer [1]."


@dataclass
class Reply:
    """Answer normally, optionally with fixed text, an extra delay, or without usage."""

    text: str | None = None
    delay: float = 0.0
    usage: bool = True


@dataclass
class Fail:
    """Answer with an HTTP error shaped like Groq's (``{"error": {...}}``)."""

    status: int
    message: str = "fake failure"
    retry_after_ms: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class BreakStream:
    """Stream ``text`` then send an in-band error event, as Groq does when a stream dies."""

    text: str = "partial "
    message: str = "stream stopped"


@dataclass
class Hang:
    """Accept the request and never answer it."""


@dataclass
class Trickle:
    """Never finish: a stream sends a token every ``interval`` seconds, a plain response a
    byte of JSON whitespace, until the client gives up."""

    interval: float = 0.2
    token: str = "slow "


Behaviour = Reply | Fail | BreakStream | Hang | Trickle


def default_responder(messages: Messages) -> str:
    return DEFAULT_ANSWER


def quoting_responder(messages: Messages) -> str:
    """Answer like a well-behaved model: the first sentence of source [1], cited.

    Reads the numbered sources that ``build_messages`` puts in the last user message;
    with none, replies "The sources don't say."
    """
    user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    match = re.search(
        r"^\[1\] [^\n]*\n(.+?)(?:\n\n\[2\] |\n\nQuestion: )",
        str(user.get("content", "")),
        re.S | re.M,
    )
    if match is None:
        return "The sources don't say."
    first = re.split(r"(?<=[.!?])\s", match.group(1).strip(), maxsplit=1)[0]
    return f"{first.rstrip('.')} [1]."


def count_tokens(text: str) -> int:
    """The fake's token count: ~4 characters a token, at least 1."""
    return max(1, (len(text) + 3) // 4)


class FakeGroq:
    """The fake server. Use as ``async with FakeGroq() as fake`` or ``await start()/stop()``."""

    def __init__(
        self,
        *,
        responder: Responder = default_responder,
        latency: float = 0.0,
        chunk_delay: float = 0.0,
        include_usage: bool = True,
    ) -> None:
        self.responder = responder
        self.latency = latency
        self.chunk_delay = chunk_delay
        self.include_usage = include_usage
        self.script: deque[Behaviour] = deque()
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str] = []
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._stopping = asyncio.Event()  # releases hung requests

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping.clear()
        app = web.Application()
        app.router.add_post(CHAT_PATH, self._chat)
        app.router.add_get("/openai/v1/models", self._models)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeGroq:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """Pass to ``AsyncGroq(base_url=...)``; the SDK appends ``/openai/v1/...``."""
        return f"http://127.0.0.1:{self._port}"

    # -- scripting -------------------------------------------------------------------------

    def enqueue(self, *behaviours: Behaviour) -> None:
        self.script.extend(behaviours)

    def fail(self, status: int, *, times: int = 1, retry_after_ms: int | None = None) -> None:
        self.enqueue(*(Fail(status, retry_after_ms=retry_after_ms) for _ in range(times)))

    def slow(self, delay: float, *, times: int = 1) -> None:
        self.enqueue(*(Reply(delay=delay) for _ in range(times)))

    def hang(self, *, times: int = 1) -> None:
        self.enqueue(*(Hang() for _ in range(times)))

    @property
    def last_messages(self) -> Messages:
        return list(self.requests[-1]["messages"]) if self.requests else []

    # -- handlers --------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        data = [{"id": "llama-3.3-70b-versatile", "object": "model", "owned_by": "Meta"}]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.authorizations.append(request.headers.get("Authorization", ""))
        behaviour = self.script.popleft() if self.script else Reply()
        if isinstance(behaviour, Fail):
            return _error_response(behaviour)
        if isinstance(behaviour, Hang):
            await self._stopping.wait()
            return web.Response(status=503)
        if isinstance(behaviour, Trickle):
            return await _trickle(request, behaviour, bool(body.get("stream")))
        delay = self.latency + (behaviour.delay if isinstance(behaviour, Reply) else 0.0)
        if delay:
            await asyncio.sleep(delay)
        model = str(body.get("model", "unknown"))
        if isinstance(behaviour, BreakStream):
            return await self._broken_stream(request, behaviour, model)
        text = behaviour.text if behaviour.text is not None else await self._respond(body)
        usage = _usage(body, text) if behaviour.usage and self.include_usage else None
        if body.get("stream"):
            return await self._stream(request, text, model, usage)
        return web.json_response(_completion(text, model, usage))

    async def _respond(self, body: dict[str, Any]) -> str:
        result = self.responder(list(body.get("messages", [])))
        return await result if inspect.isawaitable(result) else result

    async def _stream(
        self, request: web.Request, text: str, model: str, usage: dict[str, Any] | None
    ) -> web.StreamResponse:
        response = await _open_sse(request)
        ident = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        try:
            await _send(response, _chunk(ident, model, {"role": "assistant", "content": ""}))
            for piece in split_deltas(text):
                if self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
                await _send(response, _chunk(ident, model, {"content": piece}))
            final = _chunk(ident, model, {}, finish="stop")
            if usage is not None:
                final["x_groq"] = {"id": f"req_{ident}", "usage": usage}
            await _send(response, final)
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the client gave up (timeout): nothing left to say
        return response

    async def _broken_stream(
        self, request: web.Request, behaviour: BreakStream, model: str
    ) -> web.StreamResponse:
        response = await _open_sse(request)
        ident = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        await _send(response, _chunk(ident, model, {"role": "assistant", "content": ""}))
        await _send(response, _chunk(ident, model, {"content": behaviour.text}))
        await _send(response, {"error": {"message": behaviour.message, "type": "api_error"}})
        await response.write_eof()
        return response


async def _trickle(request: web.Request, trickle: Trickle, stream: bool) -> web.StreamResponse:
    if stream:
        response = await _open_sse(request)
        piece = _chunk("chatcmpl-trickle", "trickle", {"content": trickle.token})
    else:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
    try:
        while True:
            if stream:
                await _send(response, piece)
            else:
                await response.write(b" ")
            await asyncio.sleep(trickle.interval)
    except (ConnectionResetError, asyncio.CancelledError):
        pass  # the client gave up
    return response


def split_deltas(text: str) -> list[str]:
    """Word-sized deltas (each keeps its trailing space), as a real stream looks."""
    pieces: list[str] = []
    for word in text.split(" "):
        pieces.append(word + " ")
    if pieces:
        pieces[-1] = pieces[-1][:-1]
    return [p for p in pieces if p]


def _usage(body: dict[str, Any], text: str) -> dict[str, Any]:
    prompt = sum(count_tokens(str(m.get("content", ""))) for m in body.get("messages", []))
    completion = count_tokens(text) if text else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "queue_time": 0.001,
        "prompt_time": 0.001,
        "completion_time": 0.01,
        "total_time": 0.012,
    }


def _completion(text: str, model: str, usage: dict[str, Any] | None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "x_groq": {"id": "req_fake"},
    }
    if usage is not None:
        result["usage"] = usage
    return result


def _chunk(
    ident: str, model: str, delta: dict[str, Any], *, finish: str | None = None
) -> dict[str, Any]:
    return {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _error_response(fail: Fail) -> web.Response:
    headers = dict(fail.headers)
    if fail.retry_after_ms is not None:
        headers["retry-after-ms"] = str(fail.retry_after_ms)
    kind = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(fail.status, "api_error")
    body = {"error": {"message": fail.message, "type": kind, "code": kind}}
    return web.json_response(body, status=fail.status, headers=headers)


async def _open_sse(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    return response


async def _send(response: web.StreamResponse, data: dict[str, Any]) -> None:
    await response.write(f"data: {json.dumps(data)}\n\n".encode())


_WORD = re.compile(r"[a-z0-9]{3,}")
_SOURCE_1 = re.compile(r"^\[1\] [^\n]*\n(.+?)(?:\n\n\[2\] |\n\nQuestion: )", re.S | re.M)


def relevant_quoting_responder(messages: Messages) -> str:
    """quoting_responder, but quoting the sentence of source [1] that best matches the question,
    and answering a condense prompt with the follow-up itself (as a sensible model would).

    Plain quoting_responder always quotes the first sentence and answers the condense prompt
    with "The sources don't say.", so no adapter can pass ``follow_up_without_mention`` with it.
    """
    content = str(
        next((m for m in reversed(messages) if m.get("role") == "user"), {}).get("content", "")
    )
    if "Standalone question:" in content:
        follow_up = re.search(r"Follow-up question:\s*(.+?)\n", content)
        return follow_up.group(1).strip() if follow_up else content
    source = _SOURCE_1.search(content)
    question = content.rsplit("Question:", 1)[-1].lower()
    if source is None:
        return quoting_responder(messages)
    wanted = set(_WORD.findall(question))
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", source.group(1)) if s.strip()]
    best = max(sentences, key=lambda s: len(wanted & set(_WORD.findall(s.lower()))))
    return f"{best.rstrip('.')} [1]."


# -- as a separate process (benchmarks: the real Groq does not share the bot's CPU) ----------


class ArrivalLog:
    """A responder wrapper that notes the wall-clock time (``time.time()``) each request
    arrived; the fake answers after its latency, so arrival = now - latency."""

    def __init__(self, responder: Responder, latency: float) -> None:
        self.responder = responder
        self.latency = latency
        self.arrivals: list[float] = []

    def __call__(self, messages: Messages) -> str | Awaitable[str]:
        self.arrivals.append(time.time() - self.latency)
        return self.responder(messages)


async def serve(latency: float, port: int = 0) -> None:
    """Serve a FakeGroq with ``quoting_responder`` until cancelled; print its base URL first.

    ``GET /fake/arrivals`` returns the arrival times noted so far and clears them.
    """
    log = ArrivalLog(quoting_responder, latency)
    fake = FakeGroq(latency=latency, responder=log)

    async def arrivals(request: web.Request) -> web.Response:
        out, log.arrivals[:] = list(log.arrivals), []
        return web.json_response(out)

    app = web.Application()
    app.router.add_post(CHAT_PATH, fake._chat)
    app.router.add_get("/fake/arrivals", arrivals)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(f"http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="A fake Groq API on 127.0.0.1")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.latency, args.port))
