"""`lorekeeper model build`: the int8 ONNX embedding model, built into its cache directory now."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bot.settings import Settings, load_settings
from core.errors import ConfigError, LorekeeperError
from core.retrieval.embedder import SentenceTransformerEmbedder, onnx_installed
from core.retrieval.int8_model import int8_path
from core.retrieval.model_files import resolve_model_path


async def model_command(args: argparse.Namespace) -> int:
    settings = load_settings(args.env_file)
    if args.model_command == "build":
        print(await asyncio.to_thread(_build, settings))
        return 0
    raise ConfigError(f"unknown model action {args.model_command}")


def _build(settings: Settings) -> str:
    """Build (or find) the int8 model whatever the CPU's auto choice; the line to print."""
    if not onnx_installed():
        raise ConfigError("model build: ONNX Runtime (onnxruntime and onnx) is not installed")
    cache_dir = settings.model_cache_dir
    target = int8_path(resolve_model_path(settings.embedding_model), cache_dir)
    before = _built(target)
    if before is None:
        _check_writable(cache_dir)
    # trace=False: a model that falls back is not worth tracing, this command only builds.
    embedder = SentenceTransformerEmbedder(
        settings.embedding_model, backend="onnx-int8", trace=False, cache_dir=cache_dir
    )
    try:
        engine = embedder.engine  # loads the model: builds the int8 file, or loads and checks it
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"EMBEDDING_MODEL {settings.embedding_model}: does not load ({exc})"
        ) from None
    if engine != "onnx-int8":
        raise LorekeeperError(
            f"model build: no int8 model for {settings.embedding_model}: it did not build or"
            " failed its check against the float32 vectors (the logged warning says why)"
        )
    after = _built(target)
    if after is None:
        raise LorekeeperError(f"model build: the int8 model is not in {cache_dir}")
    state = "already built" if after == before else "built now"
    return f"int8 embedding model {state}: {target}"


def _built(path: Path) -> int | None:
    """The int8 file's mtime, if it is there."""
    return path.stat().st_mtime_ns if path.is_file() else None


def _check_writable(cache_dir: Path) -> None:
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=cache_dir):
            pass
    except OSError as exc:
        reason = "it is not a directory" if cache_dir.is_file() else exc.strerror or str(exc)
        raise ConfigError(
            f"model build: cannot write the model cache directory {cache_dir}"
            f" (EMBEDDING_CACHE_DIR): {reason}"
        ) from None
