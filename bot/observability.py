"""Prometheus metrics and structured logs (with secrets scrubbed) for the running bot."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram

from core.observability import log_context
from core.types import Answer

# Token shapes of the services we talk to, plus anything the settings hold as a secret.
_TOKEN_PATTERNS = (
    r"xox[abposr]-[A-Za-z0-9-]{6,}",
    r"xapp-[A-Za-z0-9-]{6,}",
    r"gsk_[A-Za-z0-9]{8,}",
    r"[MN][A-Za-z\d_-]{23,28}\.[\w-]{6,7}\.[\w-]{27,40}",  # Discord bot token
    r"[Bb]earer\s+[A-Za-z0-9._~+/-]{8,}=*",
)


class PrometheusMetrics:
    """The Metrics port on a private registry (no global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.questions = Counter(
            "lorekeeper_questions", "Questions answered, by mode", ["mode"], registry=r
        )
        self.abstentions = Counter(
            "lorekeeper_abstentions", "Questions answered with no source", registry=r
        )
        self.latency = Histogram(
            "lorekeeper_answer_seconds",
            "Time from question to stored answer",
            registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
        )
        self.tokens = Counter("lorekeeper_llm_tokens", "LLM tokens", ["kind"], registry=r)
        self.cost = Counter("lorekeeper_llm_cost_usd", "Estimated LLM cost in USD", registry=r)
        self.ingestions = Counter(
            "lorekeeper_ingestions", "Files ingested", ["outcome"], registry=r
        )
        self.ingest_seconds = Histogram(
            "lorekeeper_ingestion_seconds",
            "Ingestion time per file",
            registry=r,
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300),
        )
        self.chunks = Counter("lorekeeper_chunks_indexed", "Chunks indexed", registry=r)
        self.errors = Counter("lorekeeper_errors", "Errors by kind", ["kind"], registry=r)
        self.jobs = Counter(
            "lorekeeper_job_runs", "Scheduled job runs", ["job", "outcome"], registry=r
        )
        self.job_seconds = Histogram("lorekeeper_job_seconds", "Job duration", ["job"], registry=r)

    def answered(self, answer: Answer, seconds: float) -> None:
        self.questions.labels(answer.mode).inc()
        if answer.abstained:
            self.abstentions.inc()
        self.latency.observe(seconds)
        self.tokens.labels("prompt").inc(answer.usage.prompt_tokens)
        self.tokens.labels("completion").inc(answer.usage.completion_tokens)
        self.cost.inc(float(answer.usage.cost_usd))

    def ingested(self, *, ok: bool, chunks: int, seconds: float) -> None:
        self.ingestions.labels("ok" if ok else "failed").inc()
        self.ingest_seconds.observe(seconds)
        self.chunks.inc(chunks)

    def error(self, kind: str) -> None:
        self.errors.labels(kind).inc()

    def job_run(self, job: str, *, ok: bool, seconds: float) -> None:
        self.jobs.labels(job, "ok" if ok else "failed").inc()
        self.job_seconds.labels(job).observe(seconds)


class SecretFilter(logging.Filter):
    """Replaces known secret values and token-shaped strings in every record."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        literal = [re.escape(s) for s in secrets if s and len(s) >= 6]
        self._pattern = re.compile("|".join([*literal, *_TOKEN_PATTERNS]))

    def scrub(self, text: str) -> str:
        return self._pattern.sub("[redacted]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrub(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **log_context(),
        }
        if record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(f"{k}={v}" for k, v in log_context().items())
        return f"{line} [{context}]" if context else line


def configure_logging(*, level: str, json_logs: bool, secrets: Iterable[str]) -> SecretFilter:
    """Route every log record through the secret filter to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    scrubber = SecretFilter(secrets)
    handler.addFilter(scrubber)
    handler.setFormatter(
        JsonFormatter()
        if json_logs
        else TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    return scrubber
