"""Settings load from the environment; a bad value names the variable in one line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import Settings, load_settings
from core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_the_embedded_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DATABASE_URL", "MILVUS_URI", "GROQ_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings(env_file=None)
    assert s.database_url == "sqlite+aiosqlite:///./data/lorekeeper.db"
    assert s.milvus_uri == "./data/milvus.db"
    assert s.groq_api_key is None
    assert s.embedding_trace is True
    monkeypatch.setenv("EMBEDDING_TRACE", "false")
    assert load_settings(env_file=None).embedding_trace is False


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("DATABASE_URL", "mysql://x@y/z", "DATABASE_URL"),
        ("DB_POOL_SIZE", "many", "DB_POOL_SIZE"),
        ("CHUNK_OVERLAP", "5000", "CHUNK_OVERLAP"),
        ("LLM_PRICES", "{not json", "LLM_PRICES"),
        ("EMBEDDING_BACKEND", "onnx", "EMBEDDING_BACKEND"),
        ("EMBEDDING_TRACE", "sometimes", "EMBEDDING_TRACE"),
    ],
)
def test_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as err:
        load_settings(env_file=None)
    line = err.value.user_message
    assert line.startswith(expected + ":")
    assert "\n" not in line


def test_secrets_are_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_API_KEY", "gsk_live_abcdefghijklmnop1234567890")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1111-2222-abcdefABCDEF")
    s = load_settings(env_file=None)
    shown = repr(s) + str(s.model_dump())
    assert "gsk_live_abcdefghijklmnop1234567890" not in shown
    assert "xoxb-1111-2222-abcdefABCDEF" not in shown
    assert s.secret("groq_api_key") == "gsk_live_abcdefghijklmnop1234567890"


def test_env_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLACK_ADMIN_IDS", raising=False)
    env = tmp_path / ".env"
    env.write_text("SLACK_ADMIN_IDS=U1, U2\nMAX_UPLOAD_MB=2\n")
    s = load_settings(env_file=str(env))
    assert s.slack_admin_ids == ["U1", "U2"]
    assert s.max_upload_bytes == 2 * 1024 * 1024


def test_every_setting_is_documented_in_env_example() -> None:
    documented = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    aliases = {f.alias for f in Settings.model_fields.values()}
    compose_only = {"POSTGRES_PASSWORD"}
    assert aliases == documented - compose_only


def test_cli_stops_with_one_line_on_a_bad_value(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": "oracle://nope", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "db", "current"],
        cwd=tmp_path,
        env=env | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0
    assert "DATABASE_URL" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_help_lists_every_command() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )
    for command in ("db", "ingest", "search", "namespaces", "chat", "ask", "run", "usage", "jobs"):
        assert f"    {command}" in proc.stdout


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [f.alias for f in Settings.model_fields.values() if f"| `{f.alias}` |" not in readme]
    assert missing == []


def test_a_milvus_uri_in_the_environment_is_read_by_every_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second load in one process must see the same store (`lorekeeper demo` once loaded the
    settings for its ingest and again for its chat, and answered from ./data/milvus.db). pymilvus
    refuses a file path in MILVUS_URI when imported; the store hides it only while importing
    pymilvus: tests/cli/test_demo.py runs that in a fresh process."""
    import os

    for uri in ("/srv/lore/milvus.db", "https://milvus.internal:19530"):
        monkeypatch.setenv("MILVUS_URI", uri)
        assert load_settings(env_file=None).milvus_uri == uri
        assert load_settings(env_file=None).milvus_uri == uri
        assert os.environ["MILVUS_URI"] == uri


def test_embedding_cache_dir_defaults_to_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EMBEDDING_CACHE_DIR", raising=False)
    env = tmp_path / ".env"
    env.write_text("EMBEDDING_CACHE_DIR=\nEMBEDDING_BACKEND=onnx-int8\n")
    s = load_settings(env_file=str(env))
    assert s.embedding_cache_dir is None and s.embedding_backend == "onnx-int8"
    assert s.model_cache_dir == s.data_dir / "models"
    env.write_text(f"EMBEDDING_CACHE_DIR={tmp_path / 'm'}\n")
    assert load_settings(env_file=str(env)).embedding_cache_dir == tmp_path / "m"
    assert load_settings(env_file=str(env)).model_cache_dir == tmp_path / "m"


def test_every_credential_setting_is_a_secret() -> None:
    """A setting named like a credential must be a ``SecretStr``: only those are redacted from
    the logs (``Settings.secret_values``) and hidden from the settings' repr."""
    credential = re.compile(r"_TOKEN$|_KEY$|SECRET|PASSWORD")
    named = {n for n, f in Settings.model_fields.items() if credential.search(f.alias or "")}
    assert named and named <= set(Settings.secret_fields())
    assert {"groq_api_key", "slack_signing_secret", "discord_token"} <= named
    assert load_settings(env_file=None).secret("log_level") is None  # not a secret
