"""`lorekeeper search` and `lorekeeper namespaces` on an ingested corpus."""

from __future__ import annotations

import re

from core.ingestion.extract import extract
from tests.cli.conftest import DEPLOYMENT, VACATION, VACATION_ANSWER

# what the issue promises; "similarity" (the dense cosine) is printed as well
HIT_KEYS = {"chunk_id", "document", "title", "score", "start", "end", "text"}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


async def test_search_ranks_the_answering_chunk_first_in_the_named_namespaces(
    lorekeeper, corpus
) -> None:
    run = await lorekeeper("search", VACATION, "--namespace", "team", "--json")
    assert run.code == 0, run
    hits = run.json()
    assert isinstance(hits, list) and len(hits) == 5  # 3 handbook chunks, deploy, coffee
    for hit in hits:
        assert set(hit) == HIT_KEYS | {"similarity"}, hit
        assert UUID.match(hit["chunk_id"]) and UUID.match(hit["document"])
        assert isinstance(hit["score"], float) and hit["text"].strip()
        assert 0 <= hit["start"] < hit["end"]
        source = corpus[hit["title"]]
        extracted = extract(source.read_bytes(), source.name).text
        assert extracted[hit["start"] : hit["end"]] == hit["text"], hit
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert len({h["chunk_id"] for h in hits}) == 5
    top = hits[0]
    assert top["title"] == "handbook.md" and VACATION_ANSWER in top["text"]
    assert top["start"] > 0  # the vacation section is the handbook's second chunk
    handbook = {h["document"] for h in hits if h["title"] == "handbook.md"}
    assert handbook == {top["document"]}
    assert {h["title"] for h in hits} == {"handbook.md", "deploy.md", "coffee.txt"}

    run = await lorekeeper("search", DEPLOYMENT, "-n", "team", "--limit", "2", "--json")
    hits = run.json()
    assert run.code == 0 and len(hits) == 2 and hits[0]["title"] == "deploy.md"

    # the same ranking as lines: rank, title, [start:end], scores, then the text on one line
    run = await lorekeeper("search", VACATION, "-n", "team", "-k", "2")
    assert run.code == 0, run
    lines = run.out.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith(f"1. handbook.md [{top['start']}:{top['end']}] score=")
    assert lines[1].startswith("   ## Vacation Every employee gets 28 paid vacation days")
    assert lines[2].startswith("2. ")

    for mode in ("dense", "bm25"):
        run = await lorekeeper("search", VACATION, "-n", "team", "--mode", mode, "--json")
        assert run.code == 0 and run.json()[0]["chunk_id"] == top["chunk_id"], mode

    # only the named namespaces are searched
    question = "How quickly must the on-call engineer acknowledge a page?"
    run = await lorekeeper("search", question, "-n", "team", "--json")
    assert run.code == 0 and "oncall.md" not in {h["title"] for h in run.json()}
    run = await lorekeeper("search", question, "-n", "ops", "--json")
    hits = run.json()
    assert [h["title"] for h in hits] == ["oncall.md"] and "15 minutes" in hits[0]["text"]
    run = await lorekeeper("search", question, "-n", "team", "-n", "ops", "--json")
    hits = run.json()
    assert hits[0]["title"] == "oncall.md" and len(hits) == 5


async def test_search_queries_file_prints_one_json_line_per_query_in_order(
    lorekeeper, corpus
) -> None:
    single = (await lorekeeper("search", DEPLOYMENT, "-n", "team", "-k", "3", "--json")).json()
    queries = lorekeeper.write(
        "queries.txt",
        f"{VACATION}\n\n   \n  {DEPLOYMENT}  \nWhen is the coffee machine descaled?\n",
    )

    run = await lorekeeper("search", "--queries", str(queries), "-n", "team", "-k", "3", "--json")

    assert run.code == 0, run
    lines = run.json_lines()
    # blank lines are skipped, queries are stripped: three queries, three lines, in order
    assert [line["query"] for line in lines] == [
        VACATION,
        DEPLOYMENT,
        "When is the coffee machine descaled?",
    ]
    assert all(set(line) == {"query", "results"} for line in lines)
    assert [line["results"][0]["title"] for line in lines] == [
        "handbook.md",
        "deploy.md",
        "coffee.txt",
    ]
    assert all(len(line["results"]) == 3 for line in lines)
    assert all(set(h) == HIT_KEYS | {"similarity"} for line in lines for h in line["results"])
    assert [h["chunk_id"] for h in lines[1]["results"]] == [h["chunk_id"] for h in single]

    blank = lorekeeper.write("blank.txt", "\n  \n\n")
    run = await lorekeeper("search", "--queries", str(blank), "-n", "team", "--json")
    assert (run.code, run.out) == (0, "")

    # without --json: a block per query for a person, headed by the query, no JSON
    run = await lorekeeper("search", "--queries", str(queries), "-n", "team", "-k", "1")
    assert run.code == 0, run
    blocks = [b.splitlines() for b in run.out.strip("\n").split("\n\n")]
    assert [b[0] for b in blocks] == [
        f"Q: {VACATION}",
        f"Q: {DEPLOYMENT}",
        "Q: When is the coffee machine descaled?",
    ]
    assert [b[1].split(" [")[0] for b in blocks] == [
        "1. handbook.md",
        "1. deploy.md",
        "1. coffee.txt",
    ]
    assert all(len(b) == 3 for b in blocks)  # header, hit, its text


async def test_namespaces_lists_each_with_its_document_count(lorekeeper) -> None:
    run = await lorekeeper("namespaces")
    assert run.code == 0
    assert run.out.startswith("No namespaces in the ")  # data folder, or PostgreSQL database
    assert run.out.endswith(". Create one with: lorekeeper ingest PATH --namespace NAME\n")

    for namespace, files in (("team", ("a.md", "b.md", "c.txt")), ("ops", ("d.md",))):
        for name in files:
            lorekeeper.write(f"docs/{namespace}/{name}", f"{name} belongs to {namespace}.\n")
        assert (
            await lorekeeper(
                "ingest", str(lorekeeper.tmp_path / "docs" / namespace), "-n", namespace
            )
        ).code == 0

    run = await lorekeeper("namespaces")
    assert run.code == 0
    assert run.out.splitlines() == ["ops\t1 documents", "team\t3 documents"]

    # every terminal workspace is the organisation's: another one lists the same namespaces
    run = await lorekeeper("namespaces", "--workspace", "elsewhere")
    assert run.code == 0 and run.out.splitlines() == ["ops\t1 documents", "team\t3 documents"]
    # separate tenants: another terminal workspace has none of them
    lorekeeper.env_file.write_text(lorekeeper.env_file.read_text() + "TENANCY=workspace\n")
    run = await lorekeeper("namespaces", "--workspace", "elsewhere")
    assert run.code == 0 and run.out.startswith("No namespaces in the ")
