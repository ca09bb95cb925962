"""QueriesFirst: document steps wait for questions, and run one at a time."""

from __future__ import annotations

import asyncio

import pytest

from core.retrieval.priority import QueriesFirst


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_document_steps_wait_until_no_question_is_left() -> None:
    gate, order = QueriesFirst(), []
    answered = asyncio.Event()

    async def question(name: str) -> None:
        async with gate.query():
            await answered.wait()
            order.append(name)

    async def step(n: int) -> None:
        async with gate.document():
            order.append(f"step {n}")

    questions = [asyncio.create_task(question(f"q{i}")) for i in range(2)]
    await settle()
    steps = [asyncio.create_task(step(i)) for i in range(3)]
    await settle()
    assert order == [] and gate.queries == 2
    answered.set()
    await asyncio.gather(*questions, *steps)
    assert order == ["q0", "q1", "step 0", "step 1", "step 2"]


async def test_one_document_step_at_a_time() -> None:
    gate, running, most = QueriesFirst(), 0, 0

    async def step() -> None:
        nonlocal running, most
        async with gate.document():
            running += 1
            most = max(most, running)
            await asyncio.sleep(0)
            running -= 1

    await asyncio.gather(*(step() for _ in range(5)))
    assert most == 1


async def test_a_question_arriving_mid_step_goes_before_the_next_step() -> None:
    gate, order = QueriesFirst(), []
    first_step_running, finish_first_step = asyncio.Event(), asyncio.Event()

    async def batch() -> None:
        async with gate.document():
            first_step_running.set()
            await finish_first_step.wait()
            order.append("step 0")
        async with gate.document():
            order.append("step 1")

    async def question() -> None:
        async with gate.query():
            order.append("question")

    running = asyncio.create_task(batch())
    await first_step_running.wait()
    asking = asyncio.create_task(question())
    await settle()
    finish_first_step.set()
    await asyncio.gather(running, asking)
    assert order == ["question", "step 0", "step 1"]


async def test_a_cancelled_step_does_not_hold_up_the_others() -> None:
    gate, order = QueriesFirst(), []
    answered = asyncio.Event()

    async def question() -> None:
        async with gate.query():
            await answered.wait()

    async def step(n: int) -> None:
        async with gate.document():
            order.append(n)

    asking = asyncio.create_task(question())
    await settle()
    doomed, kept = asyncio.create_task(step(0)), asyncio.create_task(step(1))
    await settle()
    doomed.cancel()
    answered.set()
    await asyncio.gather(asking, kept)
    assert order == [1] and doomed.cancelled()


async def test_a_recent_question_asks_document_steps_to_spare_a_core(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate = QueriesFirst()
    assert not gate.spare_core()  # nobody asked yet
    async with gate.query():
        assert gate.spare_core()
    assert gate.spare_core()  # still: people are asking
    monkeypatch.setattr("core.retrieval.priority.ASKING_SECONDS", 0.01)
    await asyncio.sleep(0.02)
    assert not gate.spare_core()
