"""Autoanswer on a mixed stream: chit-chat, answerable and unanswerable questions.

A channel with autoanswer on sees everything people post there. Through the real core (the
SQuAD 2.0 subset's two articles uploaded as bench/common.py does, the real embedder, the
offline answerer), each line of the stream goes where an unaddressed top-level channel
message goes: ``asks()`` (core/conversation.py), then the gate's estimate from
``AutoAnswerService.probability`` against a threshold. For the questions the autoanswer would
take, the answer is the real ``AnswerService`` answer; it is correct when it contains a gold
answer string. Reported per threshold: silence on chit-chat, silence on unanswerable
questions, answer rate and correct-answer rate on answerable ones.

    .venv/bin/python bench/autoanswer.py [--sample N] [--seed S]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from common import bot_with_articles, load_articles, real_embedder
from machine import cpu

from core.autoanswer import DEFAULT_AUTOANSWER_THRESHOLD
from core.conversation import asks
from core.generation.gate import DEFAULT_THRESHOLD

HEADING = "Autoanswer on a mixed stream (bench/autoanswer.py)"
THRESHOLDS = (DEFAULT_THRESHOLD, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

# What people post in a team channel that is not a question for the documents.
CHIT_CHAT = (
    "good morning everyone!",
    "morning all",
    "hey team, happy Friday",
    "thanks, that helped a lot",
    "lol",
    "haha nice one",
    "anyone up for lunch?",
    "who wants coffee?",
    "is anyone else's wifi slow today?",
    "did you see the game last night?",
    "what are you all doing this weekend?",
    "how was your holiday?",
    "can someone review my PR when you get a chance?",
    "could you send me the slides from yesterday?",
    "is the standup moved to 10 today?",
    "are we still on for the 3pm sync?",
    "where are we having the team dinner?",
    "who is bringing cake on Thursday?",
    "does anyone have a spare HDMI cable?",
    "has anyone seen my blue notebook?",
    "should we order pizza for the release party?",
    "will the office be open on Monday?",
    "can you hear me now?",
    "what time is the all-hands?",
    "how do you like the new chairs?",
    "why is the printer always jammed?",
    "which song is stuck in your head today?",
    "when is Priya back from leave?",
    "is it raining where you are?",
    "anybody watching the keynote?",
    "the deploy went out, thanks everyone",
    "I'll be out this afternoon for a dentist appointment",
    "welcome to the team, Sam!",
    "congrats on the launch 🎉",
    "reminder: retro at 4pm",
    "heads up, the build is red again",
    "fixed it, my bad",
    "brb",
    "on my way",
    "sounds good to me",
    "+1",
    "agreed, let's ship it",
    "I pushed the hotfix to main",
    "the coffee machine on floor 3 is broken again",
    "great demo today",
    "ok",
    "see you tomorrow",
    "happy birthday Alex!",
    "we hit 10k users this morning",
    "I'm working from home today",
    "please remember to fill in the survey",
    "the kitchen will be cleaned at 5",
    "new stickers are on my desk",
    "running five minutes late",
    "does this look right to you?",
    "can we move our 1:1 to tomorrow?",
    "what did you think of the offsite?",
    "how's everyone doing?",
    "who broke the staging environment?",
    "shall we play a round of foosball?",
)


@dataclass(frozen=True)
class Line:
    kind: str  # chit-chat, answerable, unanswerable
    text: str
    gold: tuple[str, ...]
    asks: bool
    probability: float | None  # None: asks nothing (never judged)
    correct: bool = False  # the answer the bot would post holds a gold string


async def judge(bot: object, kind: str, text: str, gold: tuple[str, ...], n: int) -> Line:
    auto = bot.container.autoanswer  # type: ignore[attr-defined]
    thread = f"auto-{n}"
    message = bot.message(text, thread=thread, message_id=thread)  # type: ignore[attr-defined]
    if not asks(text):
        return Line(kind, text, gold, False, None)
    probability = await auto.probability(message)
    correct = False
    if gold:
        answer = await bot.say(text, thread=thread, message_id=thread)  # type: ignore[attr-defined]
        correct = not answer.abstained and any(g in answer.text.lower() for g in gold)
    return Line(kind, text, gold, True, probability, correct)


def taken(line: Line, threshold: float) -> bool:
    return line.probability is not None and line.probability >= threshold


def table(lines: list[Line]) -> str:
    chat = [x for x in lines if x.kind == "chit-chat"]
    unans = [x for x in lines if x.kind == "unanswerable"]
    ans = [x for x in lines if x.kind == "answerable"]
    rows = [
        "| threshold | silent on chit-chat | silent on unanswerable | answered (answerable) "
        "| correct answers (answerable) | correct of answered | correct of all posts |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for t in THRESHOLDS:
        silent_chat = sum(not taken(x, t) for x in chat)
        silent_unans = sum(not taken(x, t) for x in unans)
        answered = [x for x in ans if taken(x, t)]
        correct = sum(x.correct for x in answered)
        posts = len(answered) + (len(unans) - silent_unans) + (len(chat) - silent_chat)
        mark = " (default)" if t == DEFAULT_AUTOANSWER_THRESHOLD else ""
        mark += " (mention gate)" if t == DEFAULT_THRESHOLD else ""
        cells = [
            f"{t:.2f}{mark}",
            f"{silent_chat / len(chat):.1%} ({silent_chat}/{len(chat)})",
            f"{silent_unans / len(unans):.1%} ({silent_unans}/{len(unans)})",
            f"{len(answered) / len(ans):.1%} ({len(answered)}/{len(ans)})",
            f"{correct / len(ans):.1%} ({correct}/{len(ans)})",
            f"{correct / len(answered):.1%}" if answered else "-",
            f"{correct / posts:.1%} ({correct}/{posts})" if posts else "-",
        ]
        if t == DEFAULT_AUTOANSWER_THRESHOLD:
            cells = [f"**{c}**" for c in cells]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


async def main(sample: int | None, seed: int) -> None:
    articles = load_articles()
    questions = [q for a in articles for q in a.questions]
    answerable = [q for q in questions if not q.impossible]
    unanswerable = [q for q in questions if q.impossible]
    rng = random.Random(seed)
    if sample is not None:
        answerable = rng.sample(answerable, min(sample, len(answerable)))
        unanswerable = rng.sample(unanswerable, min(sample, len(unanswerable)))
    stream = (
        [("chit-chat", t, ()) for t in CHIT_CHAT]
        + [("answerable", q.text, q.answers) for q in answerable]
        + [("unanswerable", q.text, ()) for q in unanswerable]
    )
    rng.shuffle(stream)
    started = time.perf_counter()
    async with bot_with_articles("sqlite", embedder=real_embedder(), articles=articles) as bot:
        setup = time.perf_counter() - started
        lines = [
            await judge(bot, kind, text, gold, n) for n, (kind, text, gold) in enumerate(stream)
        ]
    took = time.perf_counter() - started - setup
    model, flags = cpu()
    chat = [x for x in lines if x.kind == "chit-chat"]
    print(f"date: {datetime.now(UTC):%Y-%m-%d}")
    print(f"machine: {model}; flags: {flags}; Python {platform.python_version()}")
    print(
        f"stream: {len(chat)} chit-chat lines ({sum(not x.asks for x in chat)} ask nothing), "
        f"{sum(x.kind == 'answerable' for x in lines)} answerable and "
        f"{sum(x.kind == 'unanswerable' for x in lines)} unanswerable SQuAD 2.0 questions "
        f"(seed {seed}); setup {setup:.1f} s, stream {took:.1f} s"
    )
    print()
    print(table(lines))
    loud = [x for x in chat if taken(x, DEFAULT_AUTOANSWER_THRESHOLD)]
    if loud:
        print("\nchit-chat answered at the default:", "; ".join(x.text for x in loud))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=None, help="questions of each kind")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.sample, args.seed))
