"""A file is refused by name and declared size before anything is downloaded."""

import pytest

from core.errors import UnsupportedFile
from core.ingestion.extract import ExtractLimits, precheck


def test_size_refusal_says_why() -> None:
    with pytest.raises(UnsupportedFile) as err:
        precheck("huge.pdf", 30 * 1_048_576, limits=ExtractLimits(max_bytes=20 * 1_048_576))
    assert err.value.user_message == "I can't index huge.pdf: it is 30.0 MB and the limit is 20 MB."


def test_type_refusal_and_acceptance() -> None:
    with pytest.raises(UnsupportedFile) as err:
        precheck("setup.exe", 10)
    assert "it is a .exe file" in err.value.user_message
    precheck("notes.md", 10)
    precheck("README", 10)  # no extension: the content decides later
