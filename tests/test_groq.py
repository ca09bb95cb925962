"""GroqLLM with the real groq SDK against the fake Groq server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest

from core.errors import LLMUnavailable
from core.generation.base import LLM, ChatMessage, Source
from core.generation.groq import KEY_REFUSED, NOT_RESPONDING, TOO_SLOW, GroqLLM
from core.generation.prompt import build_messages
from tests.fakes.groq_server import (
    BreakStream,
    FakeGroq,
    Reply,
    Trickle,
    quoting_responder,
    split_deltas,
)

KEY = "gsk_test_secret_key_0123456789"
MESSAGES = [ChatMessage("system", "Be brief."), ChatMessage("user", "What is the capital?")]


@pytest.fixture
async def fake() -> AsyncIterator[FakeGroq]:
    async with FakeGroq(responder=lambda messages: "Paris is the capital of France [1].") as f:
        yield f


def make_llm(fake: FakeGroq) -> GroqLLM:
    llm = GroqLLM(KEY, base_url=fake.base_url)
    port: LLM = llm  # GroqLLM implements the LLM port (checked by mypy)
    assert port.model == "llama-3.3-70b-versatile"
    return llm


def assert_no_secret(exc: LLMUnavailable, caplog: pytest.LogCaptureFixture) -> None:
    assert KEY not in str(exc)
    assert KEY not in exc.user_message
    assert KEY not in exc.reason
    assert KEY not in caplog.text


async def test_streaming_deltas_arrive_in_order_and_usage_is_read(fake: FakeGroq) -> None:
    llm = make_llm(fake)
    deltas: list[str] = []

    async def on_delta(delta: str) -> None:
        deltas.append(delta)

    completion = await llm.complete(MESSAGES, on_delta=on_delta)
    await llm.close()

    assert completion.text == "Paris is the capital of France [1]."
    assert deltas == split_deltas(completion.text)
    assert len(deltas) > 3
    sent = fake.requests[-1]
    assert sent["stream"] is True
    assert sent["messages"] == [{"role": m.role, "content": m.content} for m in MESSAGES]
    assert completion.prompt_tokens == 3 + 5  # the fake counts ~4 chars a token per message
    assert completion.completion_tokens == 9
    assert completion.model == "llama-3.3-70b-versatile"
    assert completion.latency_ms >= 0
    assert fake.authorizations[-1] == f"Bearer {KEY}"


async def test_non_streaming_reads_text_and_usage(fake: FakeGroq) -> None:
    llm = GroqLLM(KEY, model="llama-3.1-8b-instant", base_url=fake.base_url)
    completion = await llm.complete(MESSAGES, max_tokens=50, temperature=0.0)
    await llm.close()

    assert completion.text == "Paris is the capital of France [1]."
    assert (completion.prompt_tokens, completion.completion_tokens) == (8, 9)
    sent = fake.requests[-1]
    assert sent.get("stream") in (None, False)
    assert sent["model"] == "llama-3.1-8b-instant"
    assert sent["max_completion_tokens"] == 50
    assert sent["temperature"] == 0.0


async def test_missing_usage_is_estimated(fake: FakeGroq) -> None:
    fake.enqueue(Reply(text="x" * 40, usage=False))
    llm = make_llm(fake)
    got: list[str] = []

    async def on_delta(delta: str) -> None:
        got.append(delta)

    completion = await llm.complete(MESSAGES, on_delta=on_delta)
    await llm.close()
    assert completion.completion_tokens == 10
    prompt_chars = sum(len(m.content) for m in MESSAGES)
    assert completion.prompt_tokens == -(-prompt_chars // 4)


async def test_rate_limit_then_success_is_retried_quickly(fake: FakeGroq) -> None:
    fake.fail(429, times=2, retry_after_ms=5)
    llm = make_llm(fake)
    started = time.perf_counter()
    completion = await llm.complete(MESSAGES)
    await llm.close()
    assert completion.text.startswith("Paris")
    assert len(fake.requests) == 3
    assert time.perf_counter() - started < 1.0


async def test_rate_limit_forever_is_unavailable(
    fake: FakeGroq, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail(429, times=3, retry_after_ms=1)
    llm = make_llm(fake)
    with caplog.at_level(logging.DEBUG), pytest.raises(LLMUnavailable) as info:
        await llm.complete(MESSAGES)
    await llm.close()
    assert "rate-limited" in info.value.user_message
    assert len(fake.requests) == 3  # the first try and two retries
    assert_no_secret(info.value, caplog)


async def test_server_error_is_unavailable(fake: FakeGroq) -> None:
    fake.fail(500, times=3, retry_after_ms=1)
    llm = make_llm(fake)
    with pytest.raises(LLMUnavailable) as info:
        await llm.complete(MESSAGES, on_delta=_ignore)
    await llm.close()
    assert "internal error" in info.value.user_message
    assert "status=500" in info.value.reason


async def test_refused_key_says_so_without_the_key(
    fake: FakeGroq, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail(401)
    llm = make_llm(fake)
    with caplog.at_level(logging.DEBUG), pytest.raises(LLMUnavailable) as info:
        await llm.complete(MESSAGES)
    await llm.close()
    assert info.value.user_message == KEY_REFUSED
    assert "key was refused" in info.value.user_message
    assert len(fake.requests) == 1  # 401 is not retried
    assert_no_secret(info.value, caplog)


async def test_slow_response_beyond_timeout_is_unavailable(fake: FakeGroq) -> None:
    fake.slow(2.0)
    llm = GroqLLM(KEY, base_url=fake.base_url, timeout=0.3, max_retries=0)
    started = time.perf_counter()
    with pytest.raises(LLMUnavailable) as info:
        await llm.complete(MESSAGES, on_delta=_ignore)
    await llm.close()
    assert "not responding" in info.value.user_message
    assert time.perf_counter() - started < 1.5


async def test_stalled_stream_is_unavailable() -> None:
    async with FakeGroq(chunk_delay=1.0) as slow_fake:
        llm = GroqLLM(KEY, base_url=slow_fake.base_url, timeout=0.3, max_retries=0)
        with pytest.raises(LLMUnavailable) as info:
            await llm.complete(MESSAGES, on_delta=_ignore)
        await llm.close()
    assert "not responding" in info.value.user_message


# The budget (``timeout``) covers a call's retries: the SDK's default two retries of a timeout
# would make a hung Groq cost about 3.4 budgets (4.4 s for a 1 s budget, measured).
BUDGET = 1.0
SLACK = 1.5  # a loaded 2-core machine; still far below the old 3.4 x


async def test_a_hung_server_costs_one_budget_and_one_request(fake: FakeGroq) -> None:
    fake.hang(times=3)
    llm = GroqLLM(KEY, base_url=fake.base_url, timeout=BUDGET)  # max_retries: the default 2
    for on_delta in (None, _ignore):
        started = time.perf_counter()
        with pytest.raises(LLMUnavailable) as info:
            await llm.complete(MESSAGES, on_delta=on_delta)
        elapsed = time.perf_counter() - started
        assert info.value.user_message == NOT_RESPONDING
        assert BUDGET * 0.9 <= elapsed < BUDGET * SLACK
    await llm.close()
    assert len(fake.requests) == 2  # one per call: no retry after the budget ran out


async def test_a_call_past_its_deadline_fails_without_a_request(fake: FakeGroq) -> None:
    llm = make_llm(fake)
    with pytest.raises(LLMUnavailable) as info:
        await llm.complete(MESSAGES, deadline=time.monotonic())
    await llm.close()
    assert info.value.user_message == NOT_RESPONDING
    assert fake.requests == []


async def test_a_deadline_shortens_the_call_and_bounds_a_retry_wait(fake: FakeGroq) -> None:
    fake.fail(429, retry_after_ms=10_000)  # the SDK would wait 10 s before retrying
    llm = make_llm(fake)  # timeout 30 s
    started = time.perf_counter()
    with pytest.raises(LLMUnavailable):
        await llm.complete(MESSAGES, deadline=time.monotonic() + 0.5)
    await llm.close()
    assert time.perf_counter() - started < 0.5 * SLACK
    assert len(fake.requests) == 1


async def test_a_trickling_stream_ends_at_the_budget(fake: FakeGroq) -> None:
    fake.enqueue(Trickle(interval=0.2))  # no single read ever waits long enough to time out
    llm = GroqLLM(KEY, base_url=fake.base_url, timeout=BUDGET)
    deltas: list[str] = []

    async def on_delta(delta: str) -> None:
        deltas.append(delta)

    started = time.perf_counter()
    with pytest.raises(LLMUnavailable) as info:  # wait_for: fail, not hang, if it never ends
        await asyncio.wait_for(llm.complete(MESSAGES, on_delta=on_delta), BUDGET * 5)
    elapsed = time.perf_counter() - started
    await llm.close()
    assert info.value.user_message == TOO_SLOW
    assert BUDGET * 0.9 <= elapsed < BUDGET * SLACK
    assert 2 <= len(deltas) <= 6 and len(fake.requests) == 1


async def test_a_trickling_plain_response_ends_at_the_budget(fake: FakeGroq) -> None:
    fake.enqueue(Trickle(interval=0.2))  # a JSON body that never ends
    llm = GroqLLM(KEY, base_url=fake.base_url, timeout=BUDGET)
    started = time.perf_counter()
    with pytest.raises(LLMUnavailable) as info:
        await asyncio.wait_for(llm.complete(MESSAGES), BUDGET * 5)
    await llm.close()
    assert info.value.user_message == NOT_RESPONDING
    assert time.perf_counter() - started < BUDGET * SLACK


async def test_stream_error_event_is_unavailable(fake: FakeGroq) -> None:
    fake.enqueue(BreakStream())
    llm = make_llm(fake)
    with pytest.raises(LLMUnavailable) as info:
        await llm.complete(MESSAGES, on_delta=_ignore)
    await llm.close()
    assert "stopped before finishing" in info.value.user_message


async def test_unreachable_server_is_unavailable() -> None:
    async with FakeGroq() as gone:
        base_url = gone.base_url
    llm = GroqLLM(KEY, base_url=base_url, timeout=1.0, max_retries=0)
    with pytest.raises(LLMUnavailable) as info:
        await llm.complete(MESSAGES)
    await llm.close()
    assert "can't be reached" in info.value.user_message


async def test_errors_of_on_delta_are_not_hidden(fake: FakeGroq) -> None:
    llm = make_llm(fake)

    async def broken(delta: str) -> None:
        raise KeyError("adapter bug")

    with pytest.raises(KeyError):
        await llm.complete(MESSAGES, on_delta=broken)
    await llm.close()


async def test_the_server_receives_numbered_sources(fake: FakeGroq) -> None:
    sources = [
        Source(1, "c1", "d1", "Handbook", "Paris is the capital of France.", None, 0, 31, 0.9),
        Source(2, "c2", "d2", "Atlas", "Berlin is the capital of Germany.", None, 0, 33, 0.5),
    ]
    prompt = build_messages("What is the capital of France?", sources)
    llm = make_llm(fake)
    await llm.complete(prompt.messages)
    await llm.close()

    sent = fake.last_messages
    assert sent[0]["role"] == "system"
    assert "[1]" in sent[0]["content"]  # the rule asking for [n] citations
    user = sent[-1]["content"]
    assert "[1] Handbook\nParis is the capital of France." in user
    assert "[2] Atlas\nBerlin is the capital of Germany." in user
    assert user.rstrip().endswith("Question: What is the capital of France?")


def test_empty_key_is_a_config_error() -> None:
    from core.errors import ConfigError

    with pytest.raises(ConfigError):
        GroqLLM("")


async def _ignore(delta: str) -> None:
    return None


async def test_quoting_responder_cites_the_first_source() -> None:
    sources = [
        Source(1, "c1", "d1", "Handbook", "Paris is the capital. It is big.", None, 0, 31, 0.9),
        Source(2, "c2", "d2", "Atlas", "Berlin is in Germany.", None, 0, 21, 0.5),
    ]
    async with FakeGroq(responder=quoting_responder) as fake:
        llm = make_llm(fake)
        answer = await llm.complete(build_messages("Capital?", sources).messages)
        empty = await llm.complete(build_messages("Capital?", []).messages)
        await llm.close()
    assert answer.text == "Paris is the capital [1]."
    assert empty.text == "The sources don't say."


async def test_latency_is_per_request_and_requests_run_concurrently() -> None:
    async with FakeGroq(latency=0.3) as fake:
        llm = make_llm(fake)
        started = time.perf_counter()
        results = await asyncio.gather(*(llm.complete(MESSAGES) for _ in range(5)))
        elapsed = time.perf_counter() - started
        await llm.close()
    assert len(results) == 5 and len(fake.requests) == 5
    assert 0.3 <= elapsed < 1.0
