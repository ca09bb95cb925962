"""What a benchmark records about the machine it ran on (these machines differ in CPU flags)."""

from __future__ import annotations

import re
from pathlib import Path

# The flags that change which embedding backend runs, and how fast.
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu() -> tuple[str, str]:
    """(CPU model name, the FLAGS it has, space-separated; "none of the AVX512/VNNI/AMX ones"
    when it has none)."""
    text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="ignore")
    model = re.search(r"^model name\s*:\s*(.*)$", text, re.MULTILINE)
    flags = re.search(r"^flags\s*:\s*(.*)$", text, re.MULTILINE)
    present = set(flags.group(1).split()) if flags else set()
    found = " ".join(f for f in FLAGS if f in present) or "none of the AVX512/VNNI/AMX ones"
    return (model.group(1).strip() if model else "?"), found
