"""Records of tabular sources, found back in a chunk's text, and the fields of one that a
question asks about.

Ingestion writes a CSV row as one line of "column: value; column: value" and a JSON object as
"path: value" lines, the objects of a list apart by blank lines (``core.ingestion.formats``).
An answer from such a record names the record by its first field (the row's first column, the
object's first key) and gives the fields the question is about, not the whole record.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from core.text import terms

# A field name: no colon or semicolon, not a Markdown marker, at most five words.
_KEY = r"[^\s:;#>*|`\-][^:;\n]{0,59}?"
_FIELD_LINE = re.compile(rf"({_KEY}):(?: (.*))?")
_ROW_SPLIT = re.compile(rf"; (?={_KEY}: )")
_KEY_WORDS = 5
_INDEX = re.compile(r"\[\d+\]")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_TABULAR_SHARE = 0.6  # of a chunk's lines inside records, for the chunk to be a table
_MIN_FIELDS = 2


@dataclass(frozen=True, slots=True)
class Field:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Record:
    """One row or object: ``text`` as the chunk holds it, ``fields`` in their order."""

    text: str
    fields: tuple[Field, ...]

    @property
    def identifier(self) -> Field:
        return self.fields[0]


def split_records(text: str) -> list[Record | str] | None:
    """The chunk's records in order, with the text between them as strings; None when the
    chunk is not tabular (fewer than ``_TABULAR_SHARE`` of its lines belong to records)."""
    pieces: list[Record | str] = []
    lines = in_records = 0
    for block in re.split(r"\n[ \t]*\n", text):
        rows = [line for line in block.split("\n") if line.strip()]
        lines += len(rows)
        found = _block_records(rows)
        in_records += sum(len(r.text.split("\n")) for r in found if isinstance(r, Record))
        pieces.extend(found)
    if not lines or in_records < _TABULAR_SHARE * lines:
        return None
    return pieces


def _block_records(rows: list[str]) -> list[Record | str]:
    """A block's CSV rows (one record each) or its one JSON object; other lines as text.

    A row is a line of two fields or more whose first field name another row of the block
    shares (the header's first column): a line of prose with colons and semicolons has none.
    """
    parsed = [_row(line) for line in rows]
    firsts = Counter(fields[0].key for fields in parsed if len(fields) >= _MIN_FIELDS)
    is_row = [len(fields) >= _MIN_FIELDS and firsts[fields[0].key] > 1 for fields in parsed]
    if sum(is_row) * 2 > len(rows):
        return [
            Record(line, fields) if row else line
            for line, fields, row in zip(rows, parsed, is_row, strict=True)
        ]
    fields = _object(rows)
    if fields is None:
        return ["\n".join(rows)] if rows else []
    return [Record("\n".join(rows), fields)]


def _row(line: str) -> tuple[Field, ...]:
    """A line's "key: value; key: value" fields; () unless the line opens with a field."""
    fields: list[Field] = []
    for part in _ROW_SPLIT.split(line.rstrip()):
        field = _field(part)
        if field is not None:
            fields.append(field)
        elif fields:  # a value holding "; ": the split went too far
            last = fields[-1]
            fields[-1] = Field(last.key, f"{last.value}; {part}")
        else:
            return ()
    return tuple(fields)


def _object(rows: Sequence[str]) -> tuple[Field, ...] | None:
    """A block of "path: value" lines as one record; a line without a key continues the
    value before it (a string with line breaks). None unless it opens with a field, has at
    least two, and most of its lines are fields (a wrapped paragraph with a "Date:" is not)."""
    fields: list[Field] = []
    for line in rows:
        field = _field(line.rstrip())
        if field is not None:
            fields.append(field)
        elif fields:
            last = fields[-1]
            fields[-1] = Field(last.key, f"{last.value} {line.strip()}".strip())
        else:
            return None
    if len(fields) < _MIN_FIELDS or len(fields) * 2 <= len(rows):
        return None
    return tuple(fields)


def _field(part: str) -> Field | None:
    """A "key: value" part. Ingestion writes keys flush left, single-spaced and short: an
    indented line or a key with a comma or a run of spaces is prose or code."""
    match = _FIELD_LINE.fullmatch(part)
    if match is None:
        return None
    key = match.group(1)
    if len(key.split()) > _KEY_WORDS or "," in key or "  " in key:
        return None
    return Field(key.strip(), (match.group(2) or "").strip())


def _key_terms(key: str) -> set[str]:
    """A field name's terms: "contact.phoneNumber", "phone_number[0]" -> phone, number."""
    return set(terms(_CAMEL.sub(" ", _INDEX.sub(" ", key)).replace(".", " ")))


def _agents(found: set[str]) -> set[str]:
    """Key terms with the verb of an agent noun too: owner -> own, manager -> manag(e)."""
    return found | {t[: -len(end)] for t in found for end in ("er", "or") if t.endswith(end)}


def relevant_fields(
    record: Record,
    question_terms: Iterable[str],
    *,
    expected: re.Pattern[str] | None = None,
    question_words: Iterable[str] = (),
) -> tuple[Field, ...]:
    """The record's identifier and the fields the question names (by their name or their
    value); when none holds the expected answer type (a number, a date), the fields whose
    value does. The whole record when the question names none of its other fields."""
    asked = {w.lower() for w in question_words}
    rest = record.fields[1:]
    keys = [_agents(_key_terms(f.key)) for f in rest]
    # The words that name the record (its identifier's value: "Ada" of name: Ada, also in
    # her email) and a name every field shares ("employee" of employee.name,
    # employee.phone) pick out no field.
    wanted = set(question_terms) - set(terms(record.identifier.value))
    if len(keys) > 1:
        wanted -= keys[0].intersection(*keys[1:])
    named = [f for f, k in zip(rest, keys, strict=True) if (k | set(terms(f.value))) & wanted]

    def typed(field: Field) -> bool:
        found = {m.group(0).lower() for m in expected.finditer(field.value)} if expected else set()
        return bool(found - asked)

    if expected is not None and not any(typed(f) for f in named):
        named += [f for f in rest if typed(f) and f not in named]
    if not named:
        return record.fields
    return (record.identifier, *(f for f in rest if f in named))


def render(fields: Sequence[Field]) -> str:
    """Fields as one line: "name: Ada; team: Core"."""
    return "; ".join(f"{f.key}: {f.value}" for f in fields)
