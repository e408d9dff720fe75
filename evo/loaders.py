"""Readers for task data: JSONL, CSV/TSV with a header, and Hugging Face ``save_to_disk`` folders.

Every row keeps where it came from (``file:line`` or ``folder[split] row N``) so that a bad row is
reported where the user can find it. ``datasets`` is imported only when a Hugging Face folder is
read; it is an optional extra.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Any

from evo.task import SPLIT_NAMES, Example, TaskError

FORMATS = ("jsonl", "csv", "hf")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "csv"}
# Names that Hugging Face datasets commonly use for the split this project calls "dev".
_SPLIT_ALIASES = {"train": ("train",), "dev": ("dev", "validation", "valid", "val"),
                  "test": ("test",)}
HF_INSTALL_HINT = "pip install 'evo-opt[hf]'"


@dataclass(frozen=True)
class Row:
    where: str
    values: Mapping[str, Any]


RowSource = list[Row] | dict[str, list[Row]]  # a dict when one source holds several splits


def detect_format(path: Path) -> str:
    if path.is_dir():
        return "hf"
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise TaskError(f"{path}: cannot tell the format from the extension {path.suffix!r}; "
                        f"set format to one of {', '.join(FORMATS)}")
    return fmt


def read_jsonl(path: Path) -> list[Row]:
    """One JSON object per line; blank lines are skipped."""
    rows = []
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise TaskError(f"{where}: not UTF-8 text (byte {exc.start + 1})") from None
            if not line.strip():
                continue
            try:
                # without its line break, so that an error at the end is on this line
                record = json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as exc:
                raise TaskError(f"{where}: invalid JSON at column {exc.colno}: "
                                f"{json_problem(exc)}") from None
            if not isinstance(record, dict):
                raise TaskError(f"{where}: expected a JSON object, got {type(record).__name__}")
            rows.append(Row(where, record))
    return rows


# json's messages end where it would add the position ("Invalid control character at"); what
# each means, said in full
_JSON_PROBLEMS = {
    "Expecting value": "expected a value (text in double quotes, a number, true, false, null, "
                       "an object or a list)",
    "Expecting property name enclosed in double quotes": "expected a key in double quotes",
    "Expecting ':' delimiter": "expected ':' after the key",
    "Expecting ',' delimiter": "expected ',' or the end of the object or list",
    "Extra data": "more after the end of the object (one JSON object a line)",
}
_CONTROLS = {"\t": "a tab", "\r": "a carriage return"}


def json_problem(exc: json.JSONDecodeError) -> str:
    """What is wrong at the error's position, in one whole sentence, with what is there."""
    doc, pos = exc.doc, exc.pos
    found = doc[pos] if 0 <= pos < len(doc) else None
    if exc.msg.startswith("Invalid control character") and found is not None:
        name = _CONTROLS.get(found, f"the control character U+{ord(found):04X}")
        escaped = json.dumps(found)[1:-1]
        return f"{name} inside a text value; write it escaped, as {escaped}"
    if exc.msg.startswith("Unterminated string"):
        return "a text value that starts here has no closing double quote"
    if exc.msg.startswith("Invalid \\escape"):
        return (f"unknown escape {doc[pos:pos + 2]} in a text value (a backslash itself is "
                "written \\\\)")
    if exc.msg.startswith("Invalid \\uXXXX escape"):
        return f"\\u must be followed by four hexadecimal digits, found {doc[pos + 1:pos + 5]!r}"
    text = _JSON_PROBLEMS.get(exc.msg, exc.msg.removesuffix(" at"))
    return f"{text}, found {'the end of the line' if found is None else repr(found)}"


def read_csv(path: Path, required: Sequence[str] = ()) -> list[Row]:
    """A CSV (or, for ``.tsv``, tab-separated) file whose first row names the columns."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    rows = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: tolerate a BOM
            reader = csv.DictReader(fh, delimiter=delimiter)
            header = reader.fieldnames
            if not header:
                raise TaskError(f"{path}: empty file; expected a header row naming the columns")
            _require_columns(path, required, header)
            start = reader.line_num + 1
            for record in reader:
                # A quoted field may span lines: report the line the row starts on.
                where = f"{path}:{start}"
                start = reader.line_num + 1
                if None in record:
                    raise TaskError(f"{where}: more fields than the header has columns")
                rows.append(Row(where, record))
    except UnicodeDecodeError as exc:
        raise TaskError(f"{path}: not UTF-8 text (byte {exc.start + 1})") from None
    except csv.Error as exc:
        raise TaskError(f"{path}: malformed CSV: {exc}") from None
    return rows


def read_hf(path: Path, required: Sequence[str] = ()) -> RowSource:
    """A ``Dataset`` (rows) or ``DatasetDict`` (split name -> rows) saved with ``save_to_disk``.

    Integer columns with ``ClassLabel`` features come back as their label names.
    """
    try:
        import datasets
    except ImportError:
        raise TaskError(f"{path}: reading Hugging Face datasets needs the 'datasets' package: "
                        f"{HF_INSTALL_HINT}") from None
    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise TaskError(f"{path}: not a dataset saved with save_to_disk: {exc}") from None
    if isinstance(loaded, datasets.DatasetDict):
        return {name: _hf_rows(ds, f"{path}[{name}]", required)
                for name, ds in loaded.items()}
    return _hf_rows(loaded, str(path), required)


def _hf_rows(ds: Any, where: str, required: Sequence[str]) -> list[Row]:
    import datasets

    _require_columns(where, required, list(ds.column_names))
    names = {col: feat.names for col, feat in ds.features.items()
             if isinstance(feat, datasets.ClassLabel)}
    rows = []
    for i, record in enumerate(ds):
        record = dict(record)
        for col, label_names in names.items():
            value = record.get(col)
            if isinstance(value, int) and 0 <= value < len(label_names):
                record[col] = label_names[value]
        rows.append(Row(f"{where} row {i}", record))
    return rows


def _require_columns(source: Path | str, required: Iterable[str], present: Sequence[str]) -> None:
    for col in required:
        if col not in present:
            raise TaskError(f"{source}: no column {col!r} (columns: {', '.join(present)}); "
                            "map the columns with columns: {input: ..., target: ...}")


def read_rows(path: Path, fmt: str, required: Sequence[str] = ()) -> RowSource:
    if fmt == "jsonl":
        return read_jsonl(path)
    if fmt == "csv":
        return read_csv(path, required)
    if fmt == "hf":
        return read_hf(path, required)
    raise TaskError(f"{path}: unknown format {fmt!r} (formats: {', '.join(FORMATS)})")


def _text(row: Row, column: str) -> str:
    if column not in row.values or row.values[column] is None:
        fields = ", ".join(str(k) for k in row.values)
        raise TaskError(f"{row.where}: missing field {column!r} (fields: {fields})")
    value = row.values[column]
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (str, int, float)):
        text = str(value)
    else:
        raise TaskError(f"{row.where}: field {column!r} must be text or a number, "
                        f"got {type(value).__name__}")
    if not text.strip():
        raise TaskError(f"{row.where}: field {column!r} is empty")
    return text


def to_examples(
    rows: Sequence[Row],
    *,
    input_col: str = "input",
    target_col: str = "target",
    id_col: str | None = None,
    id_prefix: str = "row",
    labels: Sequence[str] | None = None,
) -> tuple[Example, ...]:
    """Map columns onto examples; ids default to ``{id_prefix}-{row index}``."""
    examples = []
    first_seen: dict[str, str] = {}
    for index, row in enumerate(rows):
        text = _text(row, input_col)
        target = _text(row, target_col)
        ex_id = _text(row, id_col) if id_col else f"{id_prefix}-{index}"
        if ex_id in first_seen:
            raise TaskError(f"{row.where}: duplicate id {ex_id!r} (first at {first_seen[ex_id]})")
        first_seen[ex_id] = row.where
        if labels is not None and target not in labels:
            raise TaskError(f"{row.where}: target {target!r} is not one of the labels "
                            f"{list(labels)}")
        examples.append(Example(id=ex_id, input=text, target=target))
    return tuple(examples)


def split_examples(
    examples: Sequence[Example], fractions: Mapping[str, float], seed: int
) -> dict[str, tuple[Example, ...]]:
    """Shuffle with ``seed`` and cut into consecutive shares; rows past the total are unused."""
    order = list(examples)
    Random(seed).shuffle(order)
    out: dict[str, tuple[Example, ...]] = {}
    start, cumulative = 0, 0.0
    for split in SPLIT_NAMES:
        cumulative += fractions.get(split, 0.0)
        end = min(len(order), round(cumulative * len(order)))
        out[split] = tuple(order[start:end])
        start = end
    return out


def _resolve(path: str, base_dir: Path) -> Path:
    resolved = Path(path).expanduser()
    if not resolved.is_absolute():
        resolved = base_dir / resolved
    if not resolved.exists():
        raise TaskError(f"{resolved}: no such file or directory")
    return resolved


def load_splits(
    data: str | Mapping[str, str],
    *,
    fmt: str | None = None,
    input_col: str = "input",
    target_col: str = "target",
    id_col: str | None = None,
    fractions: Mapping[str, float],
    seed: int = 0,
    base_dir: Path = Path(),
    labels: Sequence[str] | None = None,
) -> dict[str, tuple[Example, ...]]:
    """Examples per split from one path per split, or from one path cut by ``fractions``.

    A single Hugging Face ``DatasetDict`` supplies its own splits (``validation`` counts as dev).
    """
    required = [input_col, target_col] + ([id_col] if id_col else [])

    def convert(rows: Sequence[Row], prefix: str) -> tuple[Example, ...]:
        return to_examples(rows, input_col=input_col, target_col=target_col, id_col=id_col,
                           id_prefix=prefix, labels=labels)

    if isinstance(data, str):
        path = _resolve(data, base_dir)
        rows = read_rows(path, fmt or detect_format(path), required)
        if not isinstance(rows, dict):
            return split_examples(convert(rows, "row"), fractions, seed)
        out = {}
        for split in SPLIT_NAMES:
            key = next((k for k in _SPLIT_ALIASES[split] if k in rows), None)
            if key is None:
                raise TaskError(f"{path}: no {split!r} split (splits: {', '.join(rows)})")
            out[split] = convert(rows[key], split)
        return _check_disjoint(out)
    out = {}
    for split, name in data.items():
        path = _resolve(name, base_dir)
        rows = read_rows(path, fmt or detect_format(path), required)
        if isinstance(rows, dict):
            raise TaskError(f"{path}: holds several splits ({', '.join(rows)}); give this folder "
                            "as the single data path, or save one split per folder")
        out[split] = convert(rows, split)
    return _check_disjoint(out)


def _check_disjoint(splits: dict[str, tuple[Example, ...]]) -> dict[str, tuple[Example, ...]]:
    owner: dict[str, str] = {}
    for split, examples in splits.items():
        for ex in examples:
            if ex.id in owner and owner[ex.id] != split:
                raise TaskError(f"id {ex.id!r} is in both the {owner[ex.id]!r} and {split!r} "
                                "splits; ids must be unique across splits")
            owner[ex.id] = split
    return splits
