"""The command line a newcomer meets first, from their side: real `lorekeeper` processes
(`python -m bot`) on data folders of their own, typed into a terminal or cut short by `head`.

Exit codes: the terminal chat ends with 0 however it is left (Ctrl-C with no answer in progress
is one way to leave, like Ctrl-D, /quit and /exit; a Ctrl-C before the chat is up ends with
130). Output whose reader went away (`| head -1`) ends the command quietly with 141, 128 +
SIGPIPE, the code of `yes | head -1` under `set -o pipefail`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.console.chat import STOPPED
from bot.cli import build_parser
from tests.cli.conftest import CORPUS, VACATION
from tests.cli.process import (
    Folder,
    Terminal,
    children,
    folder,
    mentioning,
    until_none_mention,
)
from tests.fakes.groq_server import FakeGroq, relevant_quoting_responder

NO_NAMESPACE = "lorekeeper ingest PATH --namespace NAME"
SEARCHING = re.compile(r"^\(searching (.+)…\)$", re.MULTILINE)
PARKING = "# Parking\n\nThe parking garage entrance is on Elm Street.\n"


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Folder:
    """A data folder with CORPUS ingested: namespaces team, ops and general (shared: the
    commands run on it leave what other tests read as it was)."""
    made = folder(tmp_path_factory.mktemp("library"))
    for namespace, files in CORPUS.items():
        for name, text in files.items():
            path = made.path / "docs" / namespace / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        done = made.run("ingest", str(made.path / "docs" / namespace), "--namespace", namespace)
        assert done.returncode == 0, done.stderr
    return made


async def _until(check: Callable[[], object], *, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def _parser_workers(pid: int) -> set[int]:
    """The parser worker processes `lorekeeper` (``pid``) started."""
    found = set()
    for child in children(pid):
        try:
            if b"core.ingestion.parsing" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.add(child)
        except OSError:
            continue
    return found


# -- the terminal chat: Ctrl-C, Ctrl-D, /quit, /exit ------------------------------------------


@pytest.mark.slow
async def test_ctrl_c_stops_the_answer_in_progress_and_a_second_ctrl_c_leaves(
    library: Folder, tmp_path: Path
) -> None:
    parking = tmp_path / "parking.md"
    parking.write_text(PARKING)
    store = library.path / "milvus.db"
    async with FakeGroq(responder=relevant_quoting_responder) as groq:
        groq.slow(600)  # the first answer takes until it is stopped
        env = {"GROQ_API_KEY": "gsk_test_polish", "GROQ_BASE_URL": groq.base_url}
        term = library.terminal("chat", env=env)
        try:
            shown = await term.expect("> ")
            # an upload starts a parser worker, which the terminal's Ctrl-C reaches as well
            term.type(f"/upload {parking}\n")
            shown = await term.expect("> ", after=await term.expect("Indexed parking.md"))
            assert _parser_workers(term.process.pid)

            term.type(VACATION + "\n")
            await _until(lambda: groq.requests)  # the answer waits for the model's first word
            term.type(Terminal.CTRL_C)
            stopped = await term.expect(f"\n{STOPPED}\n> ", after=shown, seconds=10)
            assert "vacation days per year" not in term.screen[shown:stopped]

            term.type("Where is the parking garage entrance?\n")  # the chat goes on
            answered = await term.expect("entrance is on Elm Street [1].", after=stopped)
            prompt = await term.expect("> ", after=answered)
            assert mentioning(store)  # its milvus-lite server, which must go with it

            term.type(Terminal.CTRL_C)  # no answer in progress: leave
            code = await term.exited(seconds=15)
        finally:
            term.close()
    assert code == 0
    assert term.screen[prompt:] == "^C\n"
    assert term.stderr == ""
    await until_none_mention(store)


@pytest.mark.slow
@pytest.mark.parametrize(
    "keys",
    [Terminal.CTRL_C, Terminal.CTRL_D, "/quit\n", "/exit\n"],
    ids=["ctrl-c", "ctrl-d", "quit", "exit"],
)
async def test_the_chat_leaves_at_once(library: Folder, tmp_path: Path, keys: str) -> None:
    # A cache without the built model: its warm-up, started with the chat, takes seconds,
    # and leaving must not wait for it.
    term = library.terminal("chat", env={"EMBEDDING_CACHE_DIR": str(tmp_path / "models")})
    store = library.path / "milvus.db"
    try:
        prompt = await term.expect("> ")
        assert mentioning(store)
        typed = time.monotonic()
        term.type(keys)
        code = await term.exited(seconds=60)
        took = time.monotonic() - typed
    finally:
        term.close()
    assert code == 0
    assert took < 4.0, f"left {took:.1f}s after the keys"
    assert "Traceback" not in term.screen[prompt:]
    assert term.stderr == ""
    await until_none_mention(store)


# -- settings and empty folders ---------------------------------------------------------------


@pytest.mark.slow
def test_an_unreachable_milvus_server_is_one_line_naming_milvus_uri(tmp_path: Path) -> None:
    made = folder(tmp_path / "data")
    note = tmp_path / "note.md"
    note.write_text(PARKING)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: every connection is refused
        uri = f"http://127.0.0.1:{closed.getsockname()[1]}"
        for argv in (("search", VACATION), ("ask", VACATION), ("ingest", str(note), "-n", "a")):
            run = made.run(*argv, env={"MILVUS_URI": uri})
            assert (run.returncode, run.stdout) == (1, ""), (argv, run)
            lines = run.stderr.splitlines()  # one line, no traceback
            expected = f"lorekeeper: MILVUS_URI: can't connect to the Milvus server at {uri} ("
            assert len(lines) == 1 and lines[0].startswith(expected), (argv, run.stderr)


@pytest.mark.slow
def test_commands_that_find_nothing_name_the_data_folder(tmp_path: Path) -> None:
    made = folder(tmp_path / "empty")
    where = f"the data folder {made.path.resolve()}"

    namespaces = made.run("namespaces")
    assert (namespaces.returncode, namespaces.stderr) == (0, "")
    assert namespaces.stdout == f"No namespaces in {where}. Create one with: {NO_NAMESPACE}\n"

    usage = made.run("usage")
    assert (usage.returncode, usage.stderr) == (0, "")
    assert usage.stdout.splitlines()[-1] == f"No usage recorded in {where}."

    search = made.run("search", VACATION)
    assert (search.returncode, search.stdout, search.stderr) == (0, f"No results in {where}.\n", "")

    ask = made.run("ask", VACATION)
    assert ask.returncode == 0
    assert ask.stderr == (
        f"lorekeeper ask: no documents to answer from in {where}; add some with: {NO_NAMESPACE}\n"
    )


# -- help and --namespace ---------------------------------------------------------------------


def _parsers(
    parser: argparse.ArgumentParser, path: str = "lorekeeper"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_every_option_and_subcommand_has_help() -> None:
    missing, walked = [], []
    for path, parser in _parsers(build_parser()):
        walked.append(path)
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            name = "/".join(action.option_strings) or action.metavar or action.dest
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{path} {name}")
            if isinstance(action, argparse._SubParsersAction):
                helped = {choice.dest: choice.help for choice in action._choices_actions}
                missing += [f"{path} {sub}" for sub in action.choices if not helped.get(sub)]
    # the walk went down to the subcommands' own subcommands
    assert {"lorekeeper usage", "lorekeeper db backup", "lorekeeper jobs run"} <= set(walked)
    assert missing == []


NAMESPACE_FORMS = [
    ((), None),  # every namespace
    (("-n", "team"), ["team"]),
    (("--namespace", "team"), ["team"]),
    (("--namespace=team",), ["team"]),
    (("-nteam",), ["team"]),
    (("-n", "team", "-n", "ops"), ["team", "ops"]),
    (("--namespace", "team", "--namespace", "ops"), ["team", "ops"]),
    (("-n", "team,ops"), ["team", "ops"]),
    (("--namespace", "team, ops"), ["team", "ops"]),
    (("-n", "team,ops", "-n", "team"), ["team", "ops"]),
]


@pytest.mark.parametrize(("form", "names"), NAMESPACE_FORMS, ids=lambda v: " ".join(v or ()))
def test_search_ask_and_chat_read_namespace_options_alike(
    form: tuple[str, ...], names: list[str] | None
) -> None:
    parser = build_parser()
    for argv in (["search", "q", *form], ["ask", "q", *form], ["chat", *form]):
        assert parser.parse_args(argv).namespace == names, argv


@pytest.mark.parametrize("command", [["search", "q"], ["ask", "q"], ["chat"]])
@pytest.mark.parametrize("value", ["", "team,", "team,,ops"])
def test_a_missing_namespace_name_is_refused(
    command: list[str], value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*command, "-n", value])
    assert exit_.value.code == 2
    assert "argument --namespace/-n: a namespace name is missing" in capsys.readouterr().err


def test_ingest_refuses_a_namespace_that_search_would_read_as_two(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["ingest", "docs", "-n", "team,ops"])
    assert exit_.value.code == 2
    assert "one namespace name, without commas: 'team,ops'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("form", "names"),
    [(("-n", "team,ops"), {"team", "ops"}), ((), set(CORPUS))],
    ids=["a,b", "none"],
)
def test_search_and_ask_search_the_same_namespaces(
    library: Folder, form: tuple[str, ...], names: set[str]
) -> None:
    search = library.run("search", VACATION, *form, "--limit", "20", "--json")
    assert (search.returncode, search.stderr) == (0, ""), search
    titles = {hit["title"] for hit in json.loads(search.stdout)}
    assert titles == {title for ns in names for title in CORPUS[ns]}

    ask = library.run("ask", VACATION, *form)
    assert (ask.returncode, ask.stderr) == (0, ""), ask
    searched = SEARCHING.search(ask.stdout)
    assert searched is not None, ask.stdout
    assert set(searched.group(1).split(", ")) == names


# -- output cut short -------------------------------------------------------------------------


@pytest.mark.slow
def test_output_whose_reader_is_gone_ends_quietly(library: Folder) -> None:
    for argv in (("namespaces",), ("ask", VACATION)):
        run = library.into_closed_pipe(*argv)
        assert (run.returncode, run.stderr) == (141, ""), (argv, run.stderr)

    # far more than a pipe holds: `head` is gone while lines are still being written
    queries = library.path / "queries.txt"
    queries.write_text(f"{VACATION}\n" * 100)
    run, shown = library.piped(
        "search", "--queries", str(queries), "--limit", "20", "--json", into=["head", "-1"]
    )
    assert (run.returncode, run.stderr) == (141, ""), run.stderr
    [line] = shown.splitlines()
    assert json.loads(line)["query"] == VACATION
