"""What a streamed answer shows before it ends: its finished sentences' citation markers as the
final answer will show them, nothing that later text may still change."""

from __future__ import annotations

import random
import re

import pytest

from core.generation.citations import StreamPreview, parse_and_validate, preview
from tests.unit.test_citations import SOURCES

SENTENCE = "The Eiffel Tower is 330 metres tall"
# the shapes bench/slack_streaming.py streams: markers after each sentence, one at the end
AFTER_EACH = " ".join(f"{SENTENCE} [2]." for _ in range(8))
AT_THE_END = ". ".join([SENTENCE] * 8) + " [2]."
# cited to the wrong source (re-pointed), beyond the sources (dropped), out of order
# (renumbered), a run of two of which one holds, a footnote form
MIXED = (
    "The Eiffel Tower is 330 metres tall [1]. Paris is the capital of France [7]. "
    "Berlin is the capital of Germany [3]. It has about two million residents [1][3].\n"
    "The tower was completed in 1889 [^2]. Paris is the capital of France [1]."
)


def markers(text: str) -> list[str]:
    return re.findall(r"\[\d+\]", text)


@pytest.mark.parametrize("text", [AFTER_EACH, AT_THE_END, MIXED], ids=["each", "end", "mixed"])
def test_the_final_text_extends_every_preview(text: str) -> None:
    final, _ = parse_and_validate(text, SOURCES)
    shown = StreamPreview(SOURCES)
    for i in range(len(text) + 1):
        so_far = shown(text[:i])
        assert final.startswith(so_far), (i, so_far)
        assert markers(final)[: len(markers(so_far))] == markers(so_far), (i, so_far)
    assert shown(text) == final


def test_finished_sentences_show_the_final_markers() -> None:
    final, citations = parse_and_validate(MIXED, SOURCES)
    assert final.startswith(
        "The Eiffel Tower is 330 metres tall [1]. Paris is the capital of France. "
        "Berlin is the capital of Germany [2]. It has about two million residents [3]."
    )
    assert [c.title for c in citations] == ["Atlas", "Guide", "Handbook"]
    cut = MIXED.index("Paris is the capital of France [7]. ") + len("Paris")
    assert preview(MIXED[:cut], SOURCES) == "The Eiffel Tower is 330 metres tall [1]. Paris"
    cut = MIXED.index("It has")
    assert preview(MIXED[:cut], SOURCES) == final[: final.index("It has")].rstrip()
    # in the bench's shape, each sentence as final as soon as the next one starts
    after_each = [m.end() for m in re.finditer(r"\]\. ", AFTER_EACH)]
    final_each, _ = parse_and_validate(AFTER_EACH, SOURCES)
    for end in after_each:
        assert preview(AFTER_EACH[:end], SOURCES) == final_each[:end].rstrip()


@pytest.mark.parametrize(
    ("so_far", "shown"),
    [
        # a run of markers that may still grow, or a marker still being written
        ("Paris is the capital of France [1]", "Paris is the capital of France"),
        ("Paris is the capital of France [1] ", "Paris is the capital of France"),
        ("Paris is the capital of France [1], [", "Paris is the capital of France"),
        ("Paris is the capital of France [1, 2", "Paris is the capital of France"),
        # a marker opening a line, before the sentence it cites is written
        ("[2] The Eiffel Tower is 330", ""),
        # a backtick on the line that may open code around what follows
        ("Run `make [1]. Paris is the capital [1]. Then", "Run `make"),
    ],
)
def test_what_may_still_change_is_held_back(so_far: str, shown: str) -> None:
    assert preview(so_far, SOURCES) == shown


def test_what_is_settled_shows() -> None:
    # a marker followed by words, or by a bracket that opens no marker
    assert preview("Paris [1] is", SOURCES) == "Paris [1] is"
    assert preview("Paris [1] [see", SOURCES) == "Paris [1] [see"
    # a stray backtick on an earlier line opens nothing any more
    text = "Run `make\nParis is the capital of France [1]. Then"
    assert preview(text, SOURCES) == text


@pytest.mark.parametrize("text", [AFTER_EACH, AT_THE_END, MIXED], ids=["each", "end", "mixed"])
def test_each_preview_extends_the_one_before(text: str) -> None:
    shown = StreamPreview(SOURCES)
    before = ""
    for i in range(len(text) + 1):
        so_far = shown(text[:i])
        assert so_far.startswith(before), (i, before, so_far)
        before = so_far


def test_a_marker_opening_a_line_shows_once_its_sentence_is_written() -> None:
    text = "[2] The Eiffel Tower is 330 metres tall. Next"
    assert preview(text, SOURCES) == "[1] The Eiffel Tower is 330 metres tall. Next"


def test_brackets_in_code_stay_and_later_markers_are_checked() -> None:
    text = "Use `x[1]` here. Berlin is the capital of Germany [1]. Next"
    assert preview(text, SOURCES) == "Use `x[1]` here. Berlin is the capital of Germany [1]. Next"
    assert parse_and_validate(text, SOURCES)[0].startswith(preview(text, SOURCES))


def test_a_kept_preview_matches_a_fresh_one_and_survives_a_restart() -> None:
    shown = StreamPreview(SOURCES)
    for i in range(0, len(MIXED) + 1, 3):
        assert shown(MIXED[:i]) == preview(MIXED[:i], SOURCES), i
    # a text that does not extend the last one (a retried stream) starts over
    assert shown("Berlin is the capital of Germany [3]. X") == preview(
        "Berlin is the capital of Germany [3]. X", SOURCES
    )


# pieces of hostile model output: markers of every form, code, links, brackets, breaks
PIECES = (
    "Paris is the capital of France",
    "The Eiffel Tower is 330 metres tall",
    "Berlin",
    "It is old",
    " [1]",
    " [2]",
    "[3]",
    " [7]",
    " [1, 2]",
    "[^2]",
    " [[1]]",
    " [1-3]",
    "[1][2]",
    ", [2]",
    " [0]",
    ". ",
    "! ",
    "? ",
    "\n",
    "\n\n",
    "`x[1]`",
    "`",
    "`` ",
    "```\ncode [1]\n```\n",
    "~~~\n",
    " [see](https://e.example)",
    "[1](https://e.example)",
    " (note)",
    " - ",
    "; ",
    " and ",
    "2 ",
    "]",
    "[",
    "\n[1] ",
    "\n- [2] ",
    " [ 1 ]",
    "[\n2]",
)


def test_hostile_streams_only_ever_grow_towards_the_final_text() -> None:
    rng = random.Random(7)
    for _ in range(300):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 14)))
        final, _ = parse_and_validate(text, SOURCES)
        shown, before = StreamPreview(SOURCES), ""
        for i in range(len(text) + 1):
            so_far = shown(text[:i])
            assert so_far.startswith(before) and final.startswith(so_far), (text[:i], so_far)
            assert so_far == preview(text[:i], SOURCES)
            before = so_far
