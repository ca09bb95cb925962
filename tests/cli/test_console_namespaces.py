"""`lorekeeper ask` and `chat` without `--namespace`: every namespace of the local workspace."""

from __future__ import annotations

import io

from bot.runtime import bind_console_to_all, console_workspace, container, knowledge_owner
from tests.cli.conftest import HANDBOOK, MONGOLIA, ONCALL, VACATION, VACATION_ANSWER
from tests.cli.test_chat import BANNER, PARKING, Typist, footnotes, script_the_terminal

ONCALL_QUESTION = "How quickly must the on-call engineer acknowledge a page?"
ONCALL_ANSWER = "must acknowledge a page within 15 minutes"


async def ingest(lorekeeper, namespace: str, name: str, text: str) -> None:
    path = lorekeeper.write(f"docs/{namespace}/{name}", text)
    run = await lorekeeper("ingest", str(path), "--namespace", namespace)
    assert run.code == 0 and ", 0 failed" in run.out, run


async def ask_json(lorekeeper, question: str) -> dict:
    run = await lorekeeper("ask", question, "--json")
    assert run.code == 0, run
    return run.json()


async def test_ask_without_namespace_answers_from_an_ingested_namespace(lorekeeper) -> None:
    await ingest(lorekeeper, "handbook", "handbook.md", HANDBOOK)

    answer = await ask_json(lorekeeper, VACATION)

    assert answer["abstained"] is False, answer
    assert VACATION_ANSWER in answer["answer"] and "[1]" in answer["answer"]
    assert answer["citations"][0]["title"] == "handbook.md"
    assert answer["citations"][0]["quote"] == VACATION_ANSWER
    run = await lorekeeper("ask", VACATION)
    assert run.code == 0 and run.out.startswith("(searching handbook…)\n"), run
    assert f"> {VACATION_ANSWER} [1]" in run.out
    # a namespace that exists is searched instead of the default one, never created
    assert (await lorekeeper("namespaces")).out == "handbook\t1 documents\n"

    # a namespace ingested later is searched by the next run, beside the first one
    await ingest(lorekeeper, "ops", "oncall.md", ONCALL)
    oncall = await ask_json(lorekeeper, ONCALL_QUESTION)
    assert oncall["abstained"] is False and ONCALL_ANSWER in oncall["answer"], oncall
    assert [c["title"] for c in oncall["citations"]][:1] == ["oncall.md"]
    assert (await ask_json(lorekeeper, VACATION))["citations"][0]["title"] == "handbook.md"
    assert (await ask_json(lorekeeper, MONGOLIA))["answer"] == (
        "I couldn't find that in handbook, ops."
    )

    # with --namespace, only that one, as before
    assert (await lorekeeper("ask", ONCALL_QUESTION, "-n", "handbook", "--json")).json()[
        "answer"
    ] == "I couldn't find that in handbook."


async def test_ask_questions_file_without_namespace_searches_every_namespace(lorekeeper) -> None:
    await ingest(lorekeeper, "handbook", "handbook.md", HANDBOOK)
    await ingest(lorekeeper, "ops", "oncall.md", ONCALL)
    questions = lorekeeper.write("questions.txt", f"{VACATION}\n{ONCALL_QUESTION}\n{MONGOLIA}\n")

    run = await lorekeeper("ask", "--questions", str(questions), "--json")

    assert run.code == 0, run
    vacation, oncall, mongolia = run.json_lines()
    assert vacation["citations"][0]["quote"] == VACATION_ANSWER
    assert oncall["citations"][0]["title"] == "oncall.md"
    assert mongolia["abstained"] is True


async def test_ask_without_namespace_in_an_empty_workspace_uses_the_default(lorekeeper) -> None:
    run = await lorekeeper("ask", MONGOLIA)

    assert run.code == 0, run
    assert run.out == "(searching general…)\nI couldn't find that in general.\n"
    assert (await lorekeeper("namespaces")).out == "general\t0 documents\n"

    # the default namespace, now created, is searched with the ones ingested after it
    await ingest(lorekeeper, "handbook", "handbook.md", HANDBOOK)
    run = await lorekeeper("ask", VACATION)
    assert run.code == 0 and run.out.startswith("(searching general, handbook…)\n"), run
    assert f"> {VACATION_ANSWER} [1]" in run.out


async def test_a_deleted_namespace_bound_before_is_dropped_quietly(lorekeeper) -> None:
    await ingest(lorekeeper, "handbook", "handbook.md", HANDBOOK)
    await ingest(lorekeeper, "ops", "oncall.md", ONCALL)
    assert (await ask_json(lorekeeper, MONGOLIA))["answer"] == (
        "I couldn't find that in handbook, ops."
    )  # the console channel is now bound to both
    async with container(str(lorekeeper.env_file)) as c:
        owner = await knowledge_owner(c)
        await c.ingestion.delete_namespace(await c.knowledge.namespace(owner.id, "ops"))

    run = await lorekeeper("ask", ONCALL_QUESTION)

    assert run.code == 0, run
    assert run.out == "(searching handbook…)\nI couldn't find that in handbook.\n"
    assert (await ask_json(lorekeeper, VACATION))["citations"][0]["quote"] == VACATION_ANSWER


async def test_a_namespace_deleted_while_binding_is_skipped(lorekeeper, monkeypatch) -> None:
    await ingest(lorekeeper, "handbook", "handbook.md", HANDBOOK)
    await ingest(lorekeeper, "ops", "oncall.md", ONCALL)
    async with container(str(lorekeeper.env_file)) as c:
        ws = await console_workspace(c)
        owner = await knowledge_owner(c)
        listed = await c.knowledge.list_namespaces(owner.id)
        await c.ingestion.delete_namespace(await c.knowledge.namespace(owner.id, "ops"))

        async def stale(workspace_id):  # as listed just before another process deleted "ops"
            return listed

        monkeypatch.setattr(c.knowledge, "list_namespaces", stale)

        bound = await bind_console_to_all(c, "console")

        assert [ns.name for ns in bound] == ["handbook"]
        channel = await c.identity.channel(ws.id, "console", name="console")
        assert [ns.name for ns in await c.knowledge.channel_namespaces(channel.id)] == ["handbook"]


async def test_chat_without_namespace_searches_every_namespace_and_uploads(
    lorekeeper, monkeypatch
) -> None:
    await ingest(lorekeeper, "handbook", "handbook.md", HANDBOOK)
    await ingest(lorekeeper, "ops", "oncall.md", ONCALL)
    parking = lorekeeper.write("uploads/parking.md", PARKING)
    out = io.StringIO()
    typist = Typist(
        [VACATION, ONCALL_QUESTION, f"/upload {parking}", "Where is the parking garage entrance?"],
        out,
    )

    script_the_terminal(monkeypatch, typist, out)

    run = await lorekeeper("chat")

    assert run.code == 0, run
    assert out.getvalue().startswith(BANNER + "> ")
    vacation, oncall, upload, parked, end = typist.replies()
    assert vacation.startswith("(searching handbook, ops…)\n"), vacation
    assert footnotes(vacation)[0][1] == "handbook.md" and f"> {VACATION_ANSWER} [1]" in vacation
    assert footnotes(oncall)[0][1] == "oncall.md" and ONCALL_ANSWER in oncall
    # with several namespaces, an upload is the chat's own file (answered in the chat only)
    only_here = "Indexed parking.md: 1 chunk. Only this conversation can see it.\n"
    assert upload.endswith(only_here), upload
    assert "> The parking garage entrance is on Elm Street." in parked
    assert footnotes(parked)[0][1:3] == ("parking.md", parking.resolve().as_uri())
    assert end == "\n"
    threads = await lorekeeper.threads("console")
    assert len(threads) == 1
    assert (await lorekeeper.document_threads())["parking.md"] == next(iter(threads))
