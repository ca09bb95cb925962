"""The `lorekeeper` command line: argument parsing and dispatch, nothing else."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import warnings
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from core.errors import LorekeeperError

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def _add_db(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="database schema: upgrade, current, downgrade, backup")
    dsub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    dsub.add_parser("upgrade", help="apply all migrations (creates the schema)")
    dsub.add_parser("current", help="show the schema revision of the database")
    down = dsub.add_parser("downgrade", help="revert migrations to REVISION")
    down.add_argument("revision")
    backup = dsub.add_parser("backup", help="online, consistent copy of the SQLite database")
    backup.add_argument("path")


def _add_knowledge(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ingest = sub.add_parser("ingest", help="index files or folders into a namespace")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    ingest.add_argument("--namespace", "-n", required=True)
    ingest.add_argument("--workspace", default="local", help="workspace id (default: local)")
    search = sub.add_parser("search", help="search a namespace and print ranked chunks")
    search.add_argument("query", nargs="?")
    search.add_argument("--namespace", "-n", action="append", required=True)
    search.add_argument("--workspace", default="local")
    search.add_argument(
        "--queries", metavar="FILE", help="one query per line (with --json: a JSON line each)"
    )
    search.add_argument("--limit", "-k", type=_positive, default=5)
    search.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    search.add_argument("--json", action="store_true")
    ns = sub.add_parser("namespaces", help="list namespaces with their document counts")
    ns.add_argument("--workspace", default="local")


def _add_chat(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    namespace = (
        "search this namespace (repeat for several); without it, every namespace of the "
        "local workspace (or 'general' while there is none)"
    )
    chat = sub.add_parser("chat", help="terminal chat with the same core as the bots")
    chat.add_argument("--namespace", "-n", action="append", help=namespace)
    ask = sub.add_parser("ask", help="answer one question (or a file of questions)")
    ask.add_argument("question", nargs="?")
    ask.add_argument("--namespace", "-n", action="append", help=namespace)
    ask.add_argument(
        "--questions", metavar="FILE", help="one question per line (with --json: a JSON line each)"
    )
    ask.add_argument("--json", action="store_true")
    demo = sub.add_parser("demo", help="ingest docs/ into the 'docs' namespace, then chat")
    demo.add_argument("--docs", default="docs")
    demo.add_argument("--no-chat", action="store_true", help="ingest only")


def _add_ops(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", help="run the bot on Slack and/or Discord")
    run.add_argument("--slack", action="store_true")
    run.add_argument("--discord", action="store_true")
    usage = sub.add_parser("usage", help="token usage and cost report")
    usage.add_argument("--days", type=int, default=7)
    usage.add_argument("--by", choices=["day", "user", "channel", "namespace", "model"])
    usage.add_argument("--chart", metavar="FILE")
    usage.add_argument("--workspace", default=None)
    jobs = sub.add_parser("jobs", help="run a scheduled job by hand")
    jsub = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    jrun = jsub.add_parser("run", help="run retention, rollup or reconcile now")
    jrun.add_argument("job", choices=["retention", "rollup", "reconcile"])
    jrun.add_argument("--date", help="day for the rollup (YYYY-MM-DD, UTC)")


def _add_model(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    model = sub.add_parser("model", help="the embedding model: build its int8 ONNX form now")
    msub = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
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
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_db(sub)
    _add_knowledge(sub)
    _add_chat(sub)
    _add_ops(sub)
    _add_model(sub)
    return parser


def _handler(command: str) -> Handler | None:
    from bot import commands

    return commands.HANDLERS.get(command)


def _quiet_libraries() -> None:
    """Offline and quiet: no hub look-ups, no download bars, no deprecation chatter."""
    for name, value in (
        ("HF_HUB_OFFLINE", "1"),
        ("TRANSFORMERS_OFFLINE", "1"),
        ("TQDM_DISABLE", "1"),
        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
        ("TRANSFORMERS_VERBOSITY", "error"),
        ("TOKENIZERS_PARALLELISM", "false"),
    ):
        os.environ.setdefault(name, value)
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_libraries()
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
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
