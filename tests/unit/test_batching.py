"""Coalescer: requests that arrive while a call is in flight share the next call."""

from __future__ import annotations

import asyncio

import pytest

from core.batching import Coalescer


class Doubler:
    """A batch function that records each call's key and items and can be told to fail."""

    def __init__(self, delay: float = 0.01) -> None:
        self.calls: list[tuple[str, list[int]]] = []
        self.delay = delay
        self.fail_next = False
        self.started = asyncio.Event()

    async def run(self, key: str, items: list[int]) -> list[int]:
        self.calls.append((key, list(items)))
        self.started.set()
        await asyncio.sleep(self.delay)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("backend down")
        return [2 * i for i in items]


async def test_a_lone_request_goes_out_alone_and_at_once() -> None:
    doubler = Doubler(delay=0)
    batcher = Coalescer(doubler.run, max_batch=8)
    assert await batcher.submit("k", 21) == 42
    assert doubler.calls == [("k", [21])]


async def test_requests_arriving_during_a_call_share_the_next_one() -> None:
    doubler = Doubler()
    batcher = Coalescer(doubler.run, max_batch=8)
    first = asyncio.ensure_future(batcher.submit("k", 0))
    await doubler.started.wait()  # the first call is in flight
    rest = [asyncio.ensure_future(batcher.submit("k", i)) for i in range(1, 6)]
    assert await asyncio.gather(first, *rest) == [0, 2, 4, 6, 8, 10]
    assert doubler.calls == [("k", [0]), ("k", [1, 2, 3, 4, 5])]


async def test_only_requests_with_the_same_key_share_a_call() -> None:
    doubler = Doubler()
    batcher = Coalescer(doubler.run, max_batch=8)
    results = await asyncio.gather(*(batcher.submit("ab"[i % 2], i) for i in range(6)))
    assert results == [0, 2, 4, 6, 8, 10]
    assert sorted(doubler.calls) == [("a", [0, 2, 4]), ("b", [1, 3, 5])]


async def test_batches_never_exceed_max_batch_and_keep_arrival_order() -> None:
    doubler = Doubler()
    batcher = Coalescer(doubler.run, max_batch=3)
    results = await asyncio.gather(*(batcher.submit("k", i) for i in range(8)))
    assert results == [2 * i for i in range(8)]
    assert [items for _, items in doubler.calls] == [[0, 1, 2], [3, 4, 5], [6, 7]]


async def test_an_error_reaches_every_request_of_its_call_and_the_next_call_works() -> None:
    doubler = Doubler()
    batcher = Coalescer(doubler.run, max_batch=2)
    doubler.fail_next = True
    outcomes = await asyncio.gather(
        *(batcher.submit("k", i) for i in range(4)), return_exceptions=True
    )
    assert [str(o) if isinstance(o, Exception) else o for o in outcomes] == [
        "backend down",
        "backend down",
        4,
        6,
    ]
    assert await batcher.submit("k", 5) == 10


async def test_a_caller_that_gives_up_does_not_cancel_the_others() -> None:
    doubler = Doubler(delay=0.05)
    batcher = Coalescer(doubler.run, max_batch=8)
    impatient = asyncio.ensure_future(batcher.submit("k", 1))
    patient = asyncio.ensure_future(batcher.submit("k", 2))
    await asyncio.sleep(0.01)
    impatient.cancel()
    assert await patient == 4
    with pytest.raises(asyncio.CancelledError):
        await impatient


async def test_a_short_result_fails_the_batch_instead_of_misassigning() -> None:
    async def lossy(_key: str, items: list[int]) -> list[int]:
        return items[:-1]

    batcher = Coalescer(lossy, max_batch=8)
    outcomes = await asyncio.gather(
        *(batcher.submit("k", i) for i in range(3)), return_exceptions=True
    )
    assert all(isinstance(o, RuntimeError) for o in outcomes)


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        Coalescer(Doubler().run, max_batch=0)
