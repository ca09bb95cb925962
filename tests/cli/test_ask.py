"""`lorekeeper ask`: one question, or a file of them, answered from a namespace."""

from __future__ import annotations

from tests.cli.conftest import DEPLOYMENT, MONGOLIA, VACATION, VACATION_ANSWER

CITATION_KEYS = {"n", "document", "title", "quote", "chunk_id"}
USAGE_KEYS = {"prompt_tokens", "completion_tokens", "embedding_tokens", "cost_usd", "model"}


async def test_ask_answers_with_citations_quoted_from_the_source_or_abstains(
    lorekeeper, corpus
) -> None:
    top = (await lorekeeper("search", VACATION, "-n", "team", "--json")).json()[0]

    run = await lorekeeper("ask", VACATION, "--namespace", "team", "--json")

    assert run.code == 0, run
    answer = run.json()  # one JSON object and nothing else: no "(searching …)" line
    assert {"answer", "citations", "abstained", "usage"} <= set(answer)
    assert answer["abstained"] is False and answer["mode"] == "extractive"
    assert VACATION_ANSWER in answer["answer"] and "[1]" in answer["answer"]
    citations = answer["citations"]
    assert [c["n"] for c in citations] == list(range(1, len(citations) + 1)) and citations
    first = citations[0]
    assert set(first) >= CITATION_KEYS
    assert first["title"] == "handbook.md" and first["quote"] == VACATION_ANSWER
    assert first["quote"] in corpus["handbook.md"].read_text()
    assert (first["chunk_id"], first["document"]) == (top["chunk_id"], top["document"])
    assert set(answer["usage"]) == USAGE_KEYS
    assert answer["usage"]["embedding_tokens"] > 0 and answer["usage"]["completion_tokens"] == 0

    # the same answer for a person: quoted text, the extractive note, numbered footnotes
    run = await lorekeeper("ask", VACATION, "-n", "team")
    assert run.code == 0, run
    assert run.out.startswith("(searching team…)\n")
    assert f"> {VACATION_ANSWER} [1]" in run.out
    assert "(quoted from the sources; set GROQ_API_KEY for written answers)" in run.out
    uri = corpus["handbook.md"].resolve().as_uri()
    assert f'Sources:\n  [1] handbook.md <{uri}>\n      "{VACATION_ANSWER}"' in run.out

    # a question the documents do not answer: no answer, no citations
    run = await lorekeeper("ask", MONGOLIA, "-n", "team", "--json")
    assert run.code == 0, run
    answer = run.json()
    assert answer["abstained"] is True and answer["citations"] == []
    assert answer["answer"] == "I couldn't find that in team."

    run = await lorekeeper("ask", MONGOLIA, "-n", "team")
    assert run.code == 0
    assert run.out == "(searching team…)\nI couldn't find that in team.\n"

    # without --namespace: every namespace of the workspace, the default "general" among them
    run = await lorekeeper("ask", "What is the guest Wi-Fi network called?", "--json")
    answer = run.json()
    assert run.code == 0 and answer["abstained"] is False
    assert answer["citations"][0]["title"] == "wifi.txt"
    assert "Lorekeeper-Guest" in answer["citations"][0]["quote"]
    run = await lorekeeper("ask", VACATION, "--json")
    assert run.code == 0 and run.json()["citations"][0]["quote"] == VACATION_ANSWER
    run = await lorekeeper("ask", MONGOLIA)
    assert run.code == 0
    assert run.out == (
        "(searching general, ops, team…)\nI couldn't find that in general, ops, team.\n"
    )


async def test_ask_questions_file_answers_each_in_its_own_thread_in_order(
    lorekeeper, corpus
) -> None:
    # the second question only makes sense in a thread: in a thread of its own it asks about
    # nothing the documents say, and is not answered
    follow_up = "And for contractors?"
    questions = lorekeeper.write(
        "questions.txt", f"{VACATION}\n\n{follow_up}\n   \n{MONGOLIA}\n{DEPLOYMENT}\n"
    )

    run = await lorekeeper("ask", "--questions", str(questions), "-n", "team", "--json")

    assert run.code == 0, run
    answers = run.json_lines()
    assert [a["question"] for a in answers] == [VACATION, follow_up, MONGOLIA, DEPLOYMENT]
    assert [a["abstained"] for a in answers] == [False, True, True, False]
    assert answers[0]["citations"][0]["quote"] == VACATION_ANSWER
    assert answers[3]["citations"][0]["title"] == "deploy.md"
    assert "deployed with Helm" in answers[3]["answer"]
    threads = await lorekeeper.threads("ns:team")
    assert sorted(threads.values()) == sorted(
        [[q] for q in (VACATION, follow_up, MONGOLIA, DEPLOYMENT)]
    )

    # without --json: each answer as the chat renders it, headed by its question, no JSON
    run = await lorekeeper("ask", "--questions", str(questions), "-n", "team")
    assert run.code == 0, run
    headers = [line for line in run.out.splitlines() if line.startswith("Q: ")]
    assert headers == [f"Q: {q}" for q in (VACATION, follow_up, MONGOLIA, DEPLOYMENT)]
    assert not any(line.startswith("{") for line in run.out.splitlines())
    parts = run.out.split("Q: ")[1:]
    assert VACATION_ANSWER in parts[0] and "deployed with Helm" in parts[3]
    assert "couldn't find that in team" in parts[2]
