"""Process-wide state is set by ``bot.process`` alone: core leaves the environment as it is."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_WRITES = {"setdefault", "pop", "update", "clear", "popitem", "__setitem__", "__delitem__"}


def _python(code: str, env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_building_the_embedder_and_importing_the_vector_store_leave_the_environment() -> None:
    result = _python(
        "import json, os\n"
        "before = dict(os.environ)\n"
        "from core.retrieval.embedder import SentenceTransformerEmbedder\n"
        "SentenceTransformerEmbedder()\n"
        "import core.retrieval.milvus\n"
        "print(json.dumps({'same': dict(os.environ) == before}))\n",
        {},
    )
    assert result == {"same": True}


def test_core_never_writes_the_environment() -> None:
    """No ``os.environ[...] = ``, ``del os.environ[...]``, ``os.environ.setdefault(...)`` or
    ``os.putenv`` anywhere in core/."""
    found = []
    for path in sorted((ROOT / "core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[ast.AST] = []
            if isinstance(node, ast.Assign | ast.AugAssign | ast.Delete):
                targets = (
                    list(node.targets) if not isinstance(node, ast.AugAssign) else [node.target]
                )
            writes = any(
                isinstance(t, ast.Subscript) and ast.unparse(t.value) == "os.environ"
                for t in targets
            )
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = ast.unparse(node.func.value)
                writes |= owner == "os.environ" and node.func.attr in _WRITES
                writes |= owner == "os" and node.func.attr in {"putenv", "unsetenv"}
            if writes:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_a_milvus_lite_path_in_milvus_uri_is_hidden_from_pymilvus_and_put_back(
    tmp_path: Path,
) -> None:
    """pymilvus parses MILVUS_URI when it is imported and refuses a file path; the bot imports
    it with the path out of sight, then puts the path back for the settings."""
    uri = str(tmp_path / "milvus.db")
    result = _python(
        "import json, os, sys\n"
        "from bot import process\n"
        "process.import_vector_client()\n"
        "print(json.dumps({'uri': os.environ.get('MILVUS_URI'),"
        " 'imported': 'pymilvus' in sys.modules}))\n",
        {"MILVUS_URI": uri},
    )
    assert result == {"uri": uri, "imported": True}
