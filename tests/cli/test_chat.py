"""`lorekeeper chat`: the terminal conversation on the same core as the bots."""

from __future__ import annotations

import io
import re

from adapters.console.chat import ConsoleChat, channel_for
from bot.chat_commands import bind_chat, conversations
from bot.runtime import container
from tests.cli.conftest import VACATION, VACATION_ANSWER

BANNER = "Lorekeeper terminal chat. /help for commands.\n"
PARKING = """\
# Parking

The parking garage entrance is on Elm Street. Each employee may reserve one parking spot \
through the facilities desk.
"""
FOLLOW_UP = "And how many of them carry over?"
ALONE = "And for contractors?"  # a follow-up that means nothing without its thread
CARRY_OVER = "Unused vacation days carry over to the next year, up to a maximum of five days."
FOOTNOTE = re.compile(r'^  \[(\d+)\] (\S+) <(\S+)>\n {6}"(.+)"$', re.MULTILINE)


class Typist:
    """The chat's stdin: one scripted line per readline, then end of input.

    It notes how much output there was at each read, so each line's reply can be cut out.
    """

    def __init__(self, lines: list[str], out: io.StringIO) -> None:
        self._lines = list(lines)
        self._out = out
        self.marks: list[int] = []

    def readline(self) -> str:
        self.marks.append(len(self._out.getvalue()))
        return self._lines.pop(0) + "\n" if self._lines else ""

    def replies(self) -> list[str]:
        """What the chat printed after each line read (and after end of input), prompt removed."""
        text = self._out.getvalue()
        ends = [*self.marks[1:], len(text)]
        return [text[a:b].removesuffix("> ") for a, b in zip(self.marks, ends, strict=True)]


def script_the_terminal(monkeypatch, typist: Typist, out: io.StringIO) -> None:
    """`lorekeeper chat` runs its own ConsoleChat: make it read ``typist``, write to ``out``."""

    class Terminal(ConsoleChat):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **{**kwargs, "out": out})

        async def run(self, stdin=None) -> None:
            await super().run(typist)

    monkeypatch.setattr("bot.chat_commands.ConsoleChat", Terminal)


def footnotes(reply: str) -> list[tuple[int, str, str, str]]:
    return [(int(n), title, url, quote) for n, title, url, quote in FOOTNOTE.findall(reply)]


async def chat(lorekeeper, lines: list[str], namespace: str | None) -> tuple[str, list[str]]:
    """Run a ConsoleChat wired as `lorekeeper chat [--namespace NAMESPACE]` wires it."""
    out = io.StringIO()
    typist = Typist(lines, out)
    channel = channel_for([namespace] if namespace else None)
    async with container(str(lorekeeper.env_file)) as c:
        await bind_chat(c, channel, [namespace] if namespace else None)
        await ConsoleChat(conversations(c), channel=channel, out=out).run(stdin=typist)
    return out.getvalue(), typist.replies()


async def test_chat_upload_answers_from_the_file_and_new_starts_a_thread(
    lorekeeper, corpus
) -> None:
    parking = lorekeeper.write("uploads/parking.md", PARKING)
    question = "Where is the parking garage entrance?"
    lines = [
        "/help",
        question,
        f"/upload {parking}",
        question,
        VACATION,
        FOLLOW_UP,
        "/new",
        ALONE,
        "/frobnicate now",
    ]

    text, replies = await chat(lorekeeper, lines, "team")

    assert text.startswith(BANNER + "> ")
    assert len(replies) == len(lines) + 1 and replies[-1] == "\n"  # end of input: a clean exit
    help_, before, upload, after, vacation, follow_up, new, elsewhere, unknown, _ = replies
    for command in ("/upload PATH", "/new", "/help", "/quit"):
        assert f"\n  {command} " in help_
    assert before == "(searching team…)\nI couldn't find that in team.\n\n"
    assert "  indexed    100% 1 chunk\n" in upload
    assert upload.endswith("Indexed parking.md into team: 1 chunk.\n")

    # the uploaded file answers the question it could not answer before, cited as a footnote
    assert "> The parking garage entrance is on Elm Street." in after
    (n, title, url, quote), *_ = footnotes(after)
    assert (n, title, url) == (1, "parking.md", parking.resolve().as_uri())
    assert quote in PARKING
    assert "(quoted from the sources; set GROQ_API_KEY for written answers)" in after

    assert (1, "handbook.md", corpus["handbook.md"].resolve().as_uri(), VACATION_ANSWER) in (
        footnotes(vacation)
    )
    # a follow-up is read with its thread's earlier questions; in a new thread it stands alone
    assert CARRY_OVER in follow_up and footnotes(follow_up)[0][1] == "handbook.md"
    assert new == "(new thread)\n"
    assert elsewhere == "(searching team…)\nI couldn't find that in team.\n\n"
    assert unknown.startswith("Unknown command /frobnicate.\n") and "/upload PATH" in unknown

    threads = await lorekeeper.threads("ns:team")
    first = [question, question, VACATION, FOLLOW_UP]
    assert sorted(threads.values()) == [[ALONE], first]
    first_thread = next(key for key, asked in threads.items() if asked == first)
    assert (await lorekeeper.document_threads())["parking.md"] == first_thread


async def test_chat_refuses_bad_uploads_in_words(lorekeeper) -> None:
    folder = lorekeeper.tmp_path / "uploads"
    png = folder / "picture.png"
    lorekeeper.write("uploads/notes.xyz", "plain words in a file type nobody reads\n")
    lorekeeper.write("uploads/empty.txt", "")
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    spaced = lorekeeper.write("uploads/My Notes.md", "Dropped into the terminal.\n")
    lines = [
        f"/upload {folder / 'missing.md'}",
        f"/upload {folder}",
        "/upload",
        f"/upload '{spaced}'",  # as a terminal pastes a dropped file: quoted
        "/upload " + str(spaced).replace(" ", "\\ "),  # or with its spaces escaped
        f"/upload {spaced}",  # or as it is
        f"/upload {png}",
        f"/upload {folder / 'notes.xyz'}",
        f"/upload {folder / 'empty.txt'}",
        "/quit",
        "never read",
    ]

    text, replies = await chat(lorekeeper, lines, None)  # the default namespace

    missing, directory, nothing, quoted, escaped, plain, picture, notes, empty, quit_ = replies
    assert missing == f"No such file: {folder / 'missing.md'}\n"
    assert directory == f"{folder} is a folder; /upload takes one file (or: lorekeeper ingest)\n"
    assert nothing == "Give a file: /upload PATH\n"
    # no --namespace: the file is the chat's own
    only_here = "Indexed My Notes.md: 1 chunk. Only this conversation can see it.\n"
    assert quoted.endswith(only_here), quoted
    assert escaped.endswith("My Notes.md is already indexed here (1 chunk).\n"), escaped
    assert plain.endswith("My Notes.md is already indexed here (1 chunk).\n"), plain
    readable = "I can read .txt, .md, .pdf, .docx, .html, .csv and .json."
    assert picture.endswith(f"I can't index picture.png: it is a .png file, and {readable}\n")
    assert notes.endswith(f"I can't index notes.xyz: it is a .xyz file, and {readable}\n")
    assert empty.endswith("I can't index empty.txt: it contains no text.\n")
    assert quit_ == ""  # /quit leaves at once: the next line is never read
    assert "Traceback" not in text
    assert list(await lorekeeper.document_threads()) == ["My Notes.md"]


async def test_chat_command_answers_from_its_namespace_until_end_of_input(
    lorekeeper, corpus, monkeypatch
) -> None:
    out = io.StringIO()
    typist = Typist([VACATION], out)

    script_the_terminal(monkeypatch, typist, out)

    run = await lorekeeper("chat", "--namespace", "team")

    assert run.code == 0, run
    assert out.getvalue().startswith(BANNER + "> ")
    answer, end = typist.replies()
    assert answer.startswith("(searching team…)\n") and f"> {VACATION_ANSWER} [1]" in answer
    assert footnotes(answer)[0][1:] == (
        "handbook.md",
        corpus["handbook.md"].resolve().as_uri(),
        VACATION_ANSWER,
    )
    assert end == "\n"


async def test_chat_calls_a_command_that_only_starts_like_upload_unknown(lorekeeper) -> None:
    notes = lorekeeper.write("notes.md", "Notes.\n")

    _, replies = await chat(lorekeeper, [f"/uploads {notes}"], None)

    assert replies[0].startswith("Unknown command /uploads.\n"), replies[0]
