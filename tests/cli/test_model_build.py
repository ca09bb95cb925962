"""`lorekeeper model build`: the int8 ONNX model built into EMBEDDING_CACHE_DIR through `main`."""

from __future__ import annotations

import pytest

from bot.cli import main
from tests.cli.conftest import _QUIET, Run
from tests.embedding import cls_pooling_model

BUILT = "int8 embedding model built now: "
THERE = "int8 embedding model already built: "


@pytest.fixture
def lorekeeper(tmp_path, monkeypatch, capsys):
    """`lorekeeper --env-file ENV ARGV...` with the data directory in tmp_path."""
    # tests/conftest.py points EMBEDDING_CACHE_DIR at the shared cache: each test sets its own.
    for name in ("EMBEDDING_CACHE_DIR", "EMBEDDING_MODEL", "EMBEDDING_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    for name, value in _QUIET.items():
        monkeypatch.setenv(name, value)
    env_file = tmp_path / "lk.env"
    env_file.write_text(f"LOREKEEPER_DATA_DIR={tmp_path / 'data'}\n")

    def run(*argv: str) -> Run:
        capsys.readouterr()
        code = main(["--env-file", str(env_file), *argv])
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return run


def test_the_first_run_builds_the_model_and_the_second_finds_it(
    lorekeeper, tmp_path, monkeypatch
) -> None:
    cache = tmp_path / "models"
    monkeypatch.setenv("EMBEDDING_CACHE_DIR", str(cache))
    monkeypatch.setenv("EMBEDDING_BACKEND", "torch")  # built whatever the CPU's choice

    first = lorekeeper("model", "build")

    assert (first.code, first.err) == (0, ""), first
    [built] = cache.glob("*-int8.onnx")
    assert built.stat().st_size > 1_000_000
    assert first.out == f"{BUILT}{built}\n"
    assert not (tmp_path / "data").exists()  # EMBEDDING_CACHE_DIR, not <data dir>/models
    stamp = built.stat().st_mtime_ns

    second = lorekeeper("model", "build")

    assert (second.code, second.out, second.err) == (0, f"{THERE}{built}\n", "")
    assert built.stat().st_mtime_ns == stamp
    # the model and its manifest (what a torch-free start checks it against); no build leftovers
    assert sorted(cache.iterdir()) == sorted([built, built.with_suffix(".json")])


@pytest.mark.parametrize("setting", ["EMBEDDING_CACHE_DIR", "LOREKEEPER_DATA_DIR"])
def test_a_file_where_the_cache_directory_should_be_is_reported_in_one_line(
    lorekeeper, tmp_path, monkeypatch, setting
) -> None:
    if setting == "EMBEDDING_CACHE_DIR":
        cache = tmp_path / "models"
        monkeypatch.setenv(setting, str(cache))
    else:  # unset: <data dir>/models
        cache = tmp_path / "data" / "models"
        cache.parent.mkdir()
    cache.write_text("not a directory")

    run = lorekeeper("model", "build")

    assert (run.code, run.out) == (1, "")
    assert run.err == (
        f"lorekeeper: model build: cannot write the model cache directory {cache}"
        " (EMBEDDING_CACHE_DIR): it is not a directory\n"
    )
    assert cache.read_text() == "not a directory"


def test_a_model_whose_int8_form_fails_its_check_exits_1_without_a_traceback(
    lorekeeper, tmp_path, monkeypatch, caplog
) -> None:
    model = tmp_path / "cls-model"
    cls_pooling_model().save(str(model))  # CLS pooling: the mean-pooled int8 graph can't match
    cache = tmp_path / "models"
    monkeypatch.setenv("EMBEDDING_MODEL", str(model))
    monkeypatch.setenv("EMBEDDING_CACHE_DIR", str(cache))

    run = lorekeeper("model", "build")

    assert (run.code, run.out) == (1, "")
    assert "Traceback" not in run.err
    # the CLI's last line; above it, on a terminal, the core's warning (here caught by caplog)
    assert run.err.splitlines()[-1] == (
        f"lorekeeper: model build: no int8 model for {model}: it did not build or failed its"
        " check against the float32 vectors (the logged warning says why)"
    )
    assert any(
        "mean pooling does not reproduce the model's vectors" in r.getMessage()
        for r in caplog.records
    )
    assert not list(cache.glob("*.onnx"))
