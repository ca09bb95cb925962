"""`lorekeeper ingest`, `search` and `namespaces`."""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from bot.runtime import (
    CONSOLE,
    console_workspace,
    container,
    knowledge_owner,
    read_lines,
    stores,
)
from bot.stores import Stores, data_location
from core.errors import UnsupportedFile
from core.ingestion.extract import SUPPORTED_EXTENSIONS
from core.organisation import ORG_PLATFORM
from core.retrieval.retriever import Retrieval
from core.types import Progress

if TYPE_CHECKING:
    from bot.container import Container


def _files(paths: list[str], skipped: list[Path]) -> Iterator[Path]:
    """Named files as given; folders recursively, their readable kinds only, no dot-files.
    A folder's files of other kinds go to ``skipped`` (the summary names them)."""
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.is_dir():
            yield path
            continue
        for child in sorted(path.rglob("*")):
            hidden = any(p.startswith(".") for p in child.relative_to(path).parts)
            if not child.is_file() or hidden:
                continue
            if child.suffix.lower() in SUPPORTED_EXTENSIONS:
                yield child
            else:
                skipped.append(child)


_SKIPPED_SHOWN = 5


class _Bar:
    """A one-line progress bar on stderr."""

    def __init__(self, label: str) -> None:
        self._label = label[:40]

    async def __call__(self, p: Progress) -> None:
        filled = int(p.fraction * 20)
        sys.stderr.write(
            f"\r  {self._label:<40} [{'#' * filled}{'.' * (20 - filled)}] {p.stage:<10}"
        )
        sys.stderr.flush()


async def ingest_command(args: argparse.Namespace) -> int:
    async with container(args.env_file, offline_llm=True) as c:
        return await ingest_into(c, args.paths, args.namespace, args.workspace)


async def ingest_into(c: Container, paths: list[str], namespace: str, workspace: str) -> int:
    """Index files and folders into a console workspace's namespace, with a progress bar per
    file and a summary; 0 when at least one file was indexed (or was already)."""
    ws = await console_workspace(c, workspace)
    ns = await c.knowledge.ensure_namespace((await knowledge_owner(c, workspace)).id, namespace)
    files = chunks = tokens = duplicates = replaced = 0
    failures: list[str] = []
    skipped: list[Path] = []
    started = time.perf_counter()
    for path in _files(paths, skipped):
        files += 1
        if not path.exists():
            failures.append(f"{path}: no such file")
            continue
        location = path.resolve().as_uri()
        try:
            result = await c.uploads.load(
                path,
                path.name,
                namespace=ns,
                workspace_id=ws.id,
                actor="cli",
                identity=location,
                progress=_Bar(path.name),
            )
        except UnsupportedFile as exc:
            failures.append(f"{path}: {exc.why}")
            sys.stderr.write("\n")
            continue
        sys.stderr.write("\n")
        duplicates += result.duplicate
        replaced += len(result.replaced)
        if not result.duplicate:
            chunks += result.chunks
            tokens += result.tokens
    if chunks:  # what a running bot does in the background after an upload
        await c.ingestion.fill_sentence_vectors()
    elapsed = time.perf_counter() - started
    print(
        f"{files} files, {chunks} chunks, {tokens} tokens into '{ns.name}' in {elapsed:.1f}s; "
        f"{duplicates} duplicates skipped, {replaced} replaced, {len(failures)} failed"
    )
    for line in failures:
        print(f"  failed: {line}")
    if skipped:
        names = ", ".join(str(p) for p in skipped[:_SKIPPED_SHOWN])
        more = f" and {len(skipped) - _SKIPPED_SHOWN} more" if len(skipped) > _SKIPPED_SHOWN else ""
        print(f"  not read (other file types): {names}{more}")
    return 0 if files and len(failures) < files else 1


def _hits_json(retrieval: Retrieval) -> list[dict[str, object]]:
    return [
        {
            "chunk_id": str(h.chunk.id),
            "document": str(h.chunk.document_id),
            "title": h.chunk.title,
            "score": round(h.score, 6),
            "similarity": round(h.similarity, 4),
            "start": h.chunk.start_offset,
            "end": h.chunk.end_offset,
            "text": h.chunk.content,
        }
        for h in retrieval.chunks
    ]


async def search_command(args: argparse.Namespace) -> int:
    if not (args.query or "").strip() and not args.queries:  # blank is no query
        print("lorekeeper search: give a query or --queries FILE", file=sys.stderr)
        return 2
    async with container(args.env_file, offline_llm=True, load_model=True) as c:
        owner = await knowledge_owner(c, args.workspace)
        if args.namespace:
            ns_ids = [(await c.knowledge.namespace(owner.id, n)).id for n in args.namespace]
        else:  # as `ask` without --namespace: all of them
            ns_ids = [ns.id for ns, _ in await c.knowledge.list_namespaces(owner.id)]
        queries = read_lines(args.queries, "--queries") if args.queries else [args.query]
        for i, query in enumerate(queries):
            found = await c.retriever.search(
                query, workspace_id=owner.id, namespace_ids=ns_ids, limit=args.limit, mode=args.mode
            )
            if args.json:
                hits = _hits_json(found)
                print(json.dumps({"query": query, "results": hits} if args.queries else hits))
                continue
            if args.queries:  # a block per query, headed by it, as a person reads them
                print(("\n" if i else "") + f"Q: {query}")
            if not found.chunks:
                print(f"No results in {data_location(c.settings)}.")
            for h in found.chunks:
                snippet = " ".join(h.chunk.content.split())[:160]
                print(
                    f"{h.rank}. {h.chunk.title} [{h.chunk.start_offset}:{h.chunk.end_offset}] "
                    f"score={h.score:.4f} sim={h.similarity:.3f}\n   {snippet}"
                )
        return 0


async def namespaces_command(args: argparse.Namespace) -> int:
    async with stores(args.env_file) as c:
        owner = await knowledge_owner(c, args.workspace)
        rows = await c.knowledge.list_namespaces(owner.id)
        if not rows:
            print(
                f"No namespaces in {data_location(c.settings)}."
                " Create one with: lorekeeper ingest PATH --namespace NAME"
            )
        for ns, count in rows:
            print(
                f"{ns.name}\t{count} documents" + (f"\t{ns.description}" if ns.description else "")
            )
            for where in await bound_places(c, ns.id):
                print(f"  bound: {where}")
        return 0


async def bound_places(c: Container | Stores, namespace_id: uuid.UUID) -> list[str]:
    """Where a namespace is bound, as people name it: platform, workspace, #channel (the
    terminal's own channels, which `ask` and `chat` bind by themselves, are left out)."""
    out = []
    for channel in await c.knowledge.namespace_channels(namespace_id):
        ws = await c.identity.workspace_by_id(channel.workspace_id)
        if ws is not None and ws.platform == CONSOLE:
            continue
        workspace = (ws.name or ws.external_id) if ws else "?"
        platform = ws.platform if ws else "?"
        out.append(f"{platform} {workspace} #{channel.name or channel.external_id}")
    return out


async def workspaces_command(args: argparse.Namespace) -> int:
    """Every workspace seen (platform, id, name) and whether it belongs to the organisation."""
    async with stores(args.env_file) as c:
        seen = await c.identity.workspaces()
        org = c.organisation
        for ws in seen:
            if ws.platform == ORG_PLATFORM:
                continue
            if not org.shared:
                status = "its own tenant"
            else:
                status = "in the organisation" if org.belongs(ws) else "not enabled"
            print(f"{ws.platform}\t{ws.external_id}\t{ws.name or ''}\t{status}")
        if not any(ws.platform != ORG_PLATFORM for ws in seen):
            print(f"No workspaces seen yet in {data_location(c.settings)}.")
        return 0
