"""Structured logs carry the answer's context and never a secret."""

from __future__ import annotations

import io
import json
import logging

import pytest

from bot.observability import SecretFilter, configure_logging
from bot.settings import Settings, load_settings
from core.observability import bind_log_context

SLACK = "xoxb-2048-4096-Zq8vLrT3mN1pQ7sW9yX2aB4c"
APP = "xapp-1-A0123456789-1234567890123-abcdef0123456789abcdef"
GROQ = "gsk_9fJ2kL4mN6pQ8rS0tU2vW4xY6zA8bC0dE2fG4hJ6"
DISCORD = "MTA5ODc2NTQzMjEwOTg3NjU0MzI.GhIjKl.mNoPqRsTuVwXyZaBcDeFgHiJkLmNoPqRsTuVwX"
SIGNING = "8f7e6d5c4b3a29180f7e6d5c4b3a2918"


@pytest.fixture
def captured():
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    yield stream
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def _log_everything(stream: io.StringIO, *, json_logs: bool) -> str:
    configure_logging(level="DEBUG", json_logs=json_logs, secrets=[SIGNING, SLACK])
    logging.getLogger().handlers[0].setStream(stream)  # type: ignore[attr-defined]
    log = logging.getLogger("lorekeeper.test")
    with bind_log_context(event_id="Ev123", workspace="T42", session="s-1"):
        log.info("token %s and app token %s", SLACK, APP)
        log.warning("groq said no to %s", GROQ)
        log.error("discord %s; signing secret %s", DISCORD, SIGNING)
        log.info("Authorization: Bearer %s", "abcdefgh12345678")
        try:
            raise RuntimeError(f"request failed with key {GROQ}")
        except RuntimeError:
            log.exception("failure")
    return stream.getvalue()


@pytest.mark.parametrize("json_logs", [True, False])
def test_no_secret_reaches_the_logs(captured, json_logs: bool) -> None:
    out = _log_everything(captured, json_logs=json_logs)
    for secret in (SLACK, APP, GROQ, DISCORD, SIGNING, "abcdefgh12345678"):
        assert secret not in out
    assert out.count("[redacted]") >= 7


def test_json_lines_carry_the_context(captured) -> None:
    out = _log_everything(captured, json_logs=True)
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert records and all(r["event_id"] == "Ev123" and r["workspace"] == "T42" for r in records)
    assert any("exc" in r and "RuntimeError" in r["exc"] for r in records)


def test_scrub_keeps_ordinary_text() -> None:
    f = SecretFilter(["short", "a-long-secret-value"])
    assert f.scrub("a normal sentence about tokens") == "a normal sentence about tokens"
    assert f.scrub("x a-long-secret-value y") == "x [redacted] y"


def test_every_secret_setting_is_scrubbed(captured, monkeypatch: pytest.MonkeyPatch) -> None:
    """The redaction list comes from the settings' ``SecretStr`` fields, so a secret setting
    added later is scrubbed without anyone listing it (values shaped like no known token)."""
    values = {}
    for name in Settings.secret_fields():
        alias = Settings.model_fields[name].alias
        assert alias is not None
        values[name] = f"plain-{name}-value-0451"
        monkeypatch.setenv(alias, values[name])
    settings = load_settings(env_file=None)
    assert sorted(settings.secret_values()) == sorted(values.values())
    configure_logging(level="DEBUG", json_logs=False, secrets=settings.secret_values())
    logging.getLogger().handlers[0].setStream(captured)  # type: ignore[attr-defined]
    for value in values.values():
        logging.getLogger("lorekeeper.test").info("configured with %s", value)
    out = captured.getvalue()
    assert out.count("[redacted]") == len(values)
    assert not [v for v in values.values() if v in out]
