"""Process-wide set-up: state that belongs to the whole process, not to one object.

Core and the adapters never change the environment, the garbage collector or a library's
globals; the commands that start a process do it here, through these functions:

- ``quiet_libraries()``: the environment the model libraries read when they are imported
  (offline, no progress bars, no tokenizer threads of their own). The CLI calls it first.
- ``import_vector_client()``: pymilvus, imported with a milvus-lite ``MILVUS_URI`` out of its
  sight (it parses that variable at import and refuses anything but a server address).
- ``freeze_heap()``: what is alive now stays alive until exit, so the cyclic collector stops
  scanning it.
- ``point_discord_at()``: discord.py's REST and gateway addresses, which it keeps as class
  attributes.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import warnings

_LIBRARY_ENVIRONMENT = (
    ("HF_HUB_OFFLINE", "1"),
    ("TRANSFORMERS_OFFLINE", "1"),
    ("TQDM_DISABLE", "1"),
    ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
    ("TRANSFORMERS_VERBOSITY", "error"),
    ("TOKENIZERS_PARALLELISM", "false"),
)
_vector_client_lock = threading.Lock()


def quiet_libraries() -> None:
    """Offline and quiet: no hub look-ups, no download bars, no deprecation chatter. A value
    the user set wins."""
    for name, value in _LIBRARY_ENVIRONMENT:
        os.environ.setdefault(name, value)
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")


def import_vector_client() -> None:
    """Import pymilvus with a milvus-lite ``MILVUS_URI`` hidden from it for the while.

    The settings have read the variable already; it goes back afterwards, so a second
    ``load_settings`` in the process (``lorekeeper demo`` ingests, then chats) still finds it.
    Call it before the first vector store opens (``bot.stores`` does)."""
    from core.retrieval.connection import is_server_uri

    with _vector_client_lock:
        if "pymilvus" in sys.modules:
            return
        uri = os.environ.get("MILVUS_URI")
        hide = uri is not None and not is_server_uri(uri)
        if hide:
            del os.environ["MILVUS_URI"]
        try:
            import pymilvus  # noqa: F401
        finally:
            if hide and uri is not None:
                os.environ["MILVUS_URI"] = uri


def freeze_heap() -> None:
    """Move every object alive now out of the cyclic collector's generations.

    The bot calls it once start-up is done and again once the embedding model is loaded:
    those objects live until exit, and a full collection during a burst of questions would
    otherwise scan them all (one took 0.6 s of the event loop during 100 questions at once;
    bench/concurrency.py, bench/slack_ack.py)."""
    gc.freeze()


def point_discord_at(api_url: str, gateway_url: str | None = None) -> None:
    """Send discord.py's REST calls to ``api_url`` and, when given, its gateway elsewhere (a
    proxy, or the fake Discord of the tests), for every client of the process."""
    from adapters.discord.client import point_at

    point_at(api_url, gateway_url)
