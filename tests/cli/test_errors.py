"""Bad input gets one readable line and a non-zero exit code, never a traceback."""

from __future__ import annotations

import logging

import pytest

from tests.cli.conftest import VACATION


async def test_bad_arguments_get_a_message_and_an_exit_code(lorekeeper) -> None:
    no_namespace = "lorekeeper: There is no namespace called 'nope'.\n"
    for argv in (
        ("search", VACATION, "--namespace", "nope"),
        ("search", VACATION, "--namespace", "nope", "--json"),
        ("ask", VACATION, "--namespace", "nope", "--json"),
        ("chat", "--namespace", "nope"),
    ):
        run = await lorekeeper(*argv)
        assert (run.code, run.out, run.err) == (1, "", no_namespace), argv

    for query in ((), ("   ",)):  # none, or only blanks
        run = await lorekeeper("search", *query, "--namespace", "general")
        assert (run.code, run.err) == (2, "lorekeeper search: give a query or --queries FILE\n")
        run = await lorekeeper("ask", *query, "--json")
        assert (run.code, run.err) == (2, "lorekeeper ask: give a question or --questions FILE\n")

    missing = lorekeeper.tmp_path / "missing.md"
    run = await lorekeeper("ingest", str(missing), "--namespace", "docs")
    assert run.code == 1
    assert run.out.splitlines()[1:] == [f"  failed: {missing}: no such file"]


async def test_a_folder_ingest_names_what_it_refused_and_what_it_did_not_read(lorekeeper) -> None:
    good = lorekeeper.write("mixed/notes.txt", "The VPN server is vpn.example.com.\n")
    damaged = lorekeeper.tmp_path / "mixed" / "scan.pdf"
    damaged.write_bytes(b"%PDF-1.4 a truncated file")
    others = [lorekeeper.write(f"mixed/{name}", "x\n") for name in ("a.bin", "b.exe", "c.log")]
    lorekeeper.write("mixed/.git/config", "hidden files are not mentioned\n")

    run = await lorekeeper("ingest", str(good.parent), "--namespace", "it")

    assert run.code == 0
    summary, *details = run.out.splitlines()
    assert summary.startswith("2 files, 1 chunks, ") and summary.endswith(", 1 failed")
    assert details == [
        f"  failed: {damaged}: the PDF is damaged and can't be read",
        f"  not read (other file types): {', '.join(str(p) for p in others)}",
    ]
    # pypdf's own warnings about the damaged file stay out of the progress output
    assert logging.getLogger("pypdf").getEffectiveLevel() == logging.ERROR


@pytest.mark.parametrize("option", [("search", "--queries"), ("ask", "--questions")])
async def test_a_missing_file_of_queries_is_reported_in_words(lorekeeper, option) -> None:
    lorekeeper.write("docs/readme.md", "The docs namespace exists.\n")
    assert (await lorekeeper("ingest", str(lorekeeper.tmp_path / "docs"), "-n", "docs")).code == 0
    missing = lorekeeper.tmp_path / "missing.txt"

    run = await lorekeeper(*option, str(missing), "--namespace", "docs", "--json")

    assert run.code == 1 and run.out == ""
    assert run.err == f"lorekeeper: {option[1]} {missing}: no such file\n"


async def test_a_settings_file_that_is_not_there_is_refused(
    lorekeeper, capsys, monkeypatch
) -> None:
    from bot.cli import main

    monkeypatch.chdir(lorekeeper.tmp_path)
    capsys.readouterr()
    assert main(["--env-file", "nope.env", "namespaces"]) == 2
    assert capsys.readouterr().err == "lorekeeper: --env-file nope.env: no such file\n"
    # the defaults (./data/...) were not used instead
    assert not (lorekeeper.tmp_path / "data").exists()


async def test_a_result_count_below_one_is_refused(lorekeeper) -> None:
    with pytest.raises(SystemExit) as exited:  # argparse's usage error
        await lorekeeper("search", VACATION, "--namespace", "team", "--limit", "0")
    assert exited.value.code == 2
