"""The `lorekeeper` command line: argument parsing and dispatch, nothing else."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import process
from core.errors import LorekeeperError

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
NAMESPACE_HELP = (
    "search this namespace (repeat, or separate names with commas, for several); without it, "
    "every namespace of the workspace (or 'general' while there is none)"
)
WORKSPACE_HELP = "terminal workspace id (default: local)"


class _Namespaces(argparse.Action):
    """`-n a -n b` and `-n a,b` alike: the names in the order given, each once."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        names: list[str] = list(getattr(namespace, self.dest) or [])
        given = [name.strip() for name in str(values).split(",")]
        if not all(given):
            raise argparse.ArgumentError(self, f"a namespace name is missing in {values!r}")
        names.extend(name for name in dict.fromkeys(given) if name not in names)
        setattr(namespace, self.dest, names)


def _add_namespaces(parser: argparse.ArgumentParser) -> None:
    """`--namespace`, taken alike by every command that searches."""
    parser.add_argument(
        "--namespace", "-n", action=_Namespaces, metavar="NAME[,NAME]", help=NAMESPACE_HELP
    )


def _namespace_name(text: str) -> str:
    """One namespace: a name with a comma could never be searched (`-n a,b` is two)."""
    if "," in text:
        raise argparse.ArgumentTypeError(f"one namespace name, without commas: {text!r}")
    return text


def _add_db(sub: Subparsers) -> None:
    db = sub.add_parser("db", help="database schema: upgrade, current, downgrade, backup")
    dsub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION", help="what to do")
    dsub.add_parser("upgrade", help="apply all migrations (creates the schema)")
    dsub.add_parser("current", help="show the schema revision of the database")
    down = dsub.add_parser("downgrade", help="revert migrations to REVISION")
    down.add_argument("revision", help="the revision to go back to (e.g. 0004, or base)")
    backup = dsub.add_parser("backup", help="online, consistent copy of the SQLite database")
    backup.add_argument("path", help="where to write the copy")


def _add_knowledge(sub: Subparsers) -> None:
    ingest = sub.add_parser("ingest", help="index files or folders into a namespace")
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to index")
    ingest.add_argument(
        "--namespace",
        "-n",
        required=True,
        type=_namespace_name,
        help="the namespace to index into (made if new)",
    )
    ingest.add_argument("--workspace", default="local", help=WORKSPACE_HELP)
    search = sub.add_parser("search", help="search namespaces and print ranked chunks")
    search.add_argument("query", nargs="?", help="what to search for")
    _add_namespaces(search)
    search.add_argument("--workspace", default="local", help=WORKSPACE_HELP)
    search.add_argument(
        "--queries", metavar="FILE", help="one query per line (with --json: a JSON line each)"
    )
    search.add_argument(
        "--limit", "-k", type=_positive, default=5, help="chunks to print (default: 5)"
    )
    search.add_argument(
        "--mode",
        choices=["hybrid", "dense", "bm25"],
        default="hybrid",
        help="hybrid (default), dense vectors only, or BM25 keywords only",
    )
    search.add_argument("--json", action="store_true", help="print the hits as JSON")
    ns = sub.add_parser(
        "namespaces", help="list namespaces with their document counts and where they are bound"
    )
    ns.add_argument("--workspace", default="local", help=WORKSPACE_HELP)
    sub.add_parser(
        "workspaces",
        help="list the Slack teams, Discord servers and terminals seen, and which "
        "belong to the organisation",
    )


def _add_chat(sub: Subparsers) -> None:
    chat = sub.add_parser("chat", help="terminal chat with the same core as the bots")
    _add_namespaces(chat)
    ask = sub.add_parser("ask", help="answer one question (or a file of questions)")
    ask.add_argument("question", nargs="?", help="the question")
    _add_namespaces(ask)
    ask.add_argument(
        "--questions", metavar="FILE", help="one question per line (with --json: a JSON line each)"
    )
    ask.add_argument("--json", action="store_true", help="print the answer as JSON")
    demo = sub.add_parser("demo", help="ingest docs/ into the 'docs' namespace, then chat")
    demo.add_argument("--docs", default="docs", help="the folder to ingest (default: docs)")
    demo.add_argument("--no-chat", action="store_true", help="ingest only")


def _add_ops(sub: Subparsers) -> None:
    run = sub.add_parser("run", help="run the bot on Slack and/or Discord")
    run.add_argument("--slack", action="store_true", help="answer on Slack")
    run.add_argument("--discord", action="store_true", help="answer on Discord")
    usage = sub.add_parser("usage", help="token usage and cost report")
    usage.add_argument("--days", type=int, default=7, help="days back from now (default: 7)")
    usage.add_argument(
        "--by",
        choices=["day", "user", "channel", "namespace", "model", "operation"],
        help="what each row totals (default: day); by operation it counts calls",
    )
    usage.add_argument(
        "--ids",
        action="store_true",
        help="show the platform ids of users and channels beside their names",
    )
    usage.add_argument("--chart", metavar="FILE", help="also draw the report as a PNG into FILE")
    usage.add_argument(
        "--workspace",
        default=None,
        help="one workspace (id, external id or platform:id); default: all",
    )
    gaps = sub.add_parser("gaps", help="questions nobody could answer, grouped by meaning")
    gaps.add_argument("--days", type=int, default=7, help="days back from now (default: 7)")
    gaps.add_argument("--namespace", type=_namespace_name, help="only the channels that search it")
    gaps.add_argument("--workspace", default=None, help="one workspace (as for usage)")
    gaps.add_argument("--json", action="store_true", help="print the report as JSON")
    jobs = sub.add_parser("jobs", help="run a scheduled job by hand")
    jsub = jobs.add_subparsers(
        dest="jobs_command", required=True, metavar="ACTION", help="what to do"
    )
    jrun = jsub.add_parser("run", help="run retention, rollup, reconcile or gap-digest now")
    jrun.add_argument(
        "job", choices=["retention", "rollup", "reconcile", "gap-digest"], help="the job to run"
    )
    jrun.add_argument("--date", help="day for the rollup (YYYY-MM-DD, UTC)")


def _add_model(sub: Subparsers) -> None:
    model = sub.add_parser("model", help="the embedding model: build its int8 ONNX form now")
    msub = model.add_subparsers(
        dest="model_command", required=True, metavar="ACTION", help="what to do"
    )
    msub.add_parser(
        "build", help="build the int8 ONNX model into EMBEDDING_CACHE_DIR (kept for later starts)"
    )


DEFAULT_ENV_FILE = ".env"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lorekeeper",
        description="Lorekeeper: a team knowledge bot for Slack and Discord.",
    )
    parser.add_argument(
        "--env-file", default=DEFAULT_ENV_FILE, help="settings file (default: .env, if present)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")
    _add_db(sub)
    _add_knowledge(sub)
    _add_chat(sub)
    _add_ops(sub)
    _add_model(sub)
    return parser


def _handler(command: str) -> Handler | None:
    from bot import commands

    return commands.handler(command)


# A command whose output is cut short (`| head`) exits as tools killed by SIGPIPE do.
BROKEN_PIPE = 128 + 13


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _run(argv)
        sys.stdout.flush()  # a reader gone shows here, not as a warning at interpreter exit
        return code
    except BrokenPipeError:
        _discard_stdout()
        return BROKEN_PIPE
    except KeyboardInterrupt:
        return 130


def _run(argv: Sequence[str] | None) -> int:
    process.quiet_libraries()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # pypdf warns about each defect of a damaged PDF; the file's failure line says it in words
        logging.getLogger("pypdf").setLevel(logging.ERROR)
    handler = _handler(args.command)
    if handler is None:
        print(f"lorekeeper {args.command}: not available in this build yet", file=sys.stderr)
        return 2
    if args.env_file != DEFAULT_ENV_FILE and not Path(args.env_file).exists():
        # an explicit settings file that isn't there would silently fall back to the defaults
        print(f"lorekeeper: --env-file {args.env_file}: no such file", file=sys.stderr)
        return 2
    try:
        return asyncio.run(handler(args))
    except LorekeeperError as exc:
        print(f"lorekeeper: {exc.user_message}", file=sys.stderr)
        return 1


def _discard_stdout() -> None:
    """Point stdout at /dev/null: the interpreter flushes it once more on the way out, and a
    closed pipe would print a warning there."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (a test's capture): nothing to flush
        pass


if __name__ == "__main__":
    sys.exit(main())
