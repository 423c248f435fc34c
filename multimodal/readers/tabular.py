"""Reading a product knowledge base (a CSV, TSV or XLSX table) into rows for the ingest pipeline.

Contract:

* ``table_read(path, name=..., mapping=..., max_rows=...)`` reads one table file. ``name`` is the
  name shown to people: it starts every error message and its extension (.csv, .tsv, .xlsx) picks
  the format. The first non-empty row is the header; every later row becomes one ``TableRow``.
* Columns are given roles (id, title, description, specs, image) by their header names, spelled in
  any case and with or without spaces, underscores or hyphens; an explicit ``mapping``
  (role -> header name, empty meaning "auto") overrides that per role. Every column without a role
  lands in the row's ``specs`` as header -> value.
* Whole-file problems (empty or binary file, broken .xlsx, too many rows, an explicit column that is
  not in the header, no column that could hold text) raise ``UserInputError``. A bad row fails
  alone: it becomes a ``RowFailure`` with the line a spreadsheet shows for it (the header is line 1),
  and the other rows are returned. Rows that are entirely empty are skipped without a failure.
* Text is normalised: runs of whitespace (newlines and tabs too) become single spaces, ends stripped.
  Blank or duplicate header names are renamed (to "column 3" or "colour (column 3)") instead of failing.
* Text is bounded while it is read (``TextLimits``): a cell longer than ``cell`` characters is cut (an
  .xlsx's shared strings are cut as they stream in, so a 100 MB string is never held whole), a row keeps
  at most ``row`` characters, a table at most ``table`` (past that the file is refused). Every change is
  said: a row that was read altered carries ``notes`` ("description cut from 131,072,000 to 32,767
  characters", "2 cells past the header's 3 columns were dropped: 'x', 'y'"), the table's own (the
  encoding it was decoded from, a header cut) are in ``Table.notes``.
* A CSV row whose quoted cell swallows what look like the next rows (an unterminated quote) fails
  with the text lines it spans; the rows it swallowed are named in its reason.

Nothing here touches Django, so it can be used and tested on its own.
"""
import contextlib
import csv
import dataclasses
import datetime as dt
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserInputError
from .limits import TextLimits
from .spreadsheets import XlsxRefused, workbook_open

ROLES = ("id", "title", "description", "specs", "image")

# Header spellings recognised per role, in order of preference (the first match wins).
ROLE_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "product id", "sku", "item id", "code"),
    "title": ("title", "name", "product", "product name"),
    "description": ("description", "desc", "text", "body", "details", "summary"),
    "specs": ("specs", "specifications", "spec", "attributes", "features"),
    "image": ("image", "image path", "image file", "picture", "photo", "img", "image url"),
}
TEXT_ROLES = ("title", "description")
FORMATS = {".csv": "csv", ".tsv": "tsv", ".xlsx": "xlsx"}
CSV_DELIMITERS = ",;\t|"
SINGLE_COLUMN_DELIMITER = "\x00"
# Enough lines for the sniffer to see a pattern, without reading a big file twice.
SNIFF_CHARS = 64 * 1024
TITLE_MAX_CHARS = 80
NO_TEXT_REASON = "row without text (title and description are empty)"

HEADER_MAX_CHARS = 200
# How many cells a note quotes by name before it says "and N more".
NOTE_CELLS_NAMED = 3
# What a short text (a file name, a tiny table) is read as when the detector finds several encodings
# equally likely: the legacy code pages most files come in, most common first.
PREFERRED_ENCODINGS = ("cp1252", "cp932", "gb18030", "cp949", "big5", "cp1251")

# A spec key is a short label ("Screen size", "Max. speed"), not a sentence that happens to hold a colon.
SPEC_KEY_MAX_CHARS = 50
SPEC_KEY_MAX_WORDS = 6
_PAIR_RE = re.compile(r"^(?P<key>[^:=]+?)\s*[:=]\s*(?P<value>.*)$", re.DOTALL)
_SENTENCE_BREAK_RE = re.compile(r"[.!?]\s")
_BULLET_RE = re.compile(r"^(?:[-*\u2022\u00b7]\s*)+")
# Finest split first: "a=1, b=2" is two pairs, while "colour: red, blue; size: M" only splits on ";".
_SPEC_SPLITS = (re.compile(r"[\n;,]"), re.compile(r"[\n;]"), re.compile(r"\n"))
_WHITESPACE_RE = re.compile(r"\s+")
_HEADER_KEY_RE = re.compile(r"[\s_\-]+")


@dataclass(frozen=True)
class ColumnMapping:
    """Which header holds each role's values; None when the table has no column for it."""

    id: str | None = None
    title: str | None = None
    description: str | None = None
    specs: str | None = None
    image: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {role: getattr(self, role) for role in ROLES}


@dataclass(frozen=True)
class TableRow:
    line: int  # 1-based row number as a spreadsheet shows it (the header is line 1)
    external_id: str  # '' when no id column
    title: str
    description: str
    specs: dict[str, str]  # parsed specs column + every column without a role, empty values dropped
    specs_text: str  # the specs column's text when it is not key:value pairs, else ''
    image_ref: str  # '' when none; as written in the cell (a path inside a zip or a file name)
    notes: tuple[str, ...] = ()  # how reading changed the row (cells cut or dropped), for people


@dataclass(frozen=True)
class RowFailure:
    line: int
    reason: str


@dataclass
class Table:
    mapping: ColumnMapping  # the resolved mapping actually used
    headers: list[str]
    rows: list[TableRow] = field(default_factory=list)
    failures: list[RowFailure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # about the whole file: its encoding, headers cut


@dataclass
class _Record:
    """One row as read: its cells (each already cut to the limits) and what reading did to them."""

    line: int
    cells: list[str]
    cut: dict[int, int] = field(default_factory=dict)  # column index -> characters the cell had
    failure: str = ""  # set when the reader can tell the record is not one row (an unterminated quote)


# --- public entry points -------------------------------------------------------------------------


def table_read(path: Path, *, name: str, mapping: dict[str, str] | None = None, max_rows: int = 100_000,
               limits: TextLimits = TextLimits()) -> Table:
    """Read the table at ``path`` (shown to people as ``name``) into rows and per-row failures."""
    file_notes: list[str] = []
    records = _records_open(Path(path), name, limits, file_notes)
    with contextlib.closing(records):
        header = _header_find(records, name)
        headers = headers_clean(header.cells)
        file_notes += _header_notes(header, headers, limits)
        headers = [header_name[:HEADER_MAX_CHARS] for header_name in headers]
        table = Table(mapping=mapping_resolve(headers, mapping, name=name), headers=headers, notes=file_notes)
        row_count = 0
        characters = 0
        for record in records:
            if _is_blank(record.cells):
                continue
            row_count += 1
            # Past the limit, keep counting (cheaply) so the message can say how big the file is.
            if row_count > max_rows:
                continue
            characters += sum(len(cell) for cell in record.cells)
            if characters > limits.table:
                raise UserInputError(f"{name}: holds more than {limits.table:,} characters of text by line "
                                     f"{record.line}; the limit is {limits.table:,}: split the table")
            if record.failure:
                table.failures.append(RowFailure(line=record.line, reason=record.failure))
                continue
            outcome = row_build(record.line, record.cells, headers, table.mapping)
            if isinstance(outcome, RowFailure):
                table.failures.append(outcome)
                continue
            notes = _row_notes(record, headers, limits)
            table.rows.append(dataclasses.replace(outcome, notes=tuple(notes)) if notes else outcome)
    if row_count > max_rows:
        raise UserInputError(f"{name}: {row_count} rows, the limit is {max_rows}")
    return table


def specs_parse(text: str) -> dict[str, str] | None:
    """Key/value pairs from a specs cell, or None when the text is free text rather than pairs.

    Accepted: a JSON object, "key: value; key: value", "key=value, key=value", or one "key: value"
    per line (optionally bulleted). Keys and values are whitespace-normalised, empty values dropped,
    and a key given twice keeps both values ("red, blue"). Blank text has no pairs: {}.
    """
    if not text.strip():
        return {}
    from_json = _specs_from_json(text)
    if from_json is not None:
        return from_json
    for separator in _SPEC_SPLITS:
        pairs = _pairs_split(text, separator)
        if pairs is not None:
            return _pairs_merge(pairs)
    return None


# --- reading records ------------------------------------------------------------------------------


def _records_open(path: Path, name: str, limits: TextLimits, notes: list[str]) -> Iterator[_Record]:
    """Every row of the file, blank rows included so line numbers stay true; file notes go to ``notes``."""
    kind = FORMATS.get(Path(name).suffix.lower())
    if kind is None:
        raise UserInputError(f"{name}: not a table file (expected .csv, .tsv or .xlsx)")
    if kind == "xlsx":
        return _xlsx_records(path, name, limits)
    # Read whole (it is decoded and sniffed as a whole): refuse before that a file whose text could
    # not fit the table's limit even at 4 bytes a character, the most UTF-8 takes.
    size = path.stat().st_size
    if size > 4 * limits.table:
        raise UserInputError(f"{name}: {size:,} bytes is more text than a table may hold "
                             f"({limits.table:,} characters): split the table")
    data = path.read_bytes()
    if not data.strip():
        raise UserInputError(f"{name}: the file is empty")
    text, encoding = text_decode(data, name)
    if encoding:
        notes.append(f"not UTF-8: read as {encoding}")
    return _csv_records(text, name, limits, fallback_delimiter="\t" if kind == "tsv" else ",")


def _header_find(records: Iterator[_Record], name: str) -> _Record:
    # Blank lines above the header are tolerated: a spreadsheet shows them, and so do our line numbers.
    for record in records:
        if not _is_blank(record.cells):
            return record
    raise UserInputError(f"{name}: no header row (the file has no content)")


def _csv_records(text: str, name: str, limits: TextLimits, *, fallback_delimiter: str) -> Iterator[_Record]:
    delimiter = delimiter_detect(text, fallback_delimiter)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    # An odd number of quote characters: some quote is never closed (a doubled "" counts two).
    unbalanced = text.count('"') % 2 == 1
    line = 0
    columns = None  # the header's cell count, once read
    text_line = 1  # the text line the next record starts on
    try:
        # One record is one spreadsheet row, even when a quoted cell spans several text lines.
        for line, cells in enumerate(reader, start=1):
            record = _record_cut(line, cells, limits)
            if columns is None and not _is_blank(cells):
                columns = len(cells)
            elif columns is not None and reader.line_num > text_line:
                record.failure = _swallowed_rows(cells, delimiter, columns, text_line, reader.line_num,
                                                 unbalanced=unbalanced)
            text_line = reader.line_num + 1
            yield record
    except csv.Error as error:
        if "field larger than field limit" in str(error):  # the csv module's own cap (131,072 characters)
            raise UserInputError(f"{name}: line {line + 1} has a cell of more than {csv.field_size_limit():,} "
                                 f"characters (cells are kept to {limits.cell:,})") from error
        raise UserInputError(f"{name}: line {line + 1} cannot be read as CSV ({error})") from error


def _swallowed_rows(cells: list[str], delimiter: str, columns: int, first: int, last: int, *,
                    unbalanced: bool) -> str:
    """Why a record spanning text lines ``first``..``last`` is not one row, or '' when it is.

    A quoted cell may hold line breaks (a description in paragraphs, commas and all). It is taken
    for an unterminated quote when a line inside it has as many delimiters as a row of the table
    does (a row the quote swallowed, which ingesting the record would lose silently) and either the
    record has the wrong number of cells (the quote closed somewhere in a later row) or the file's
    quotes do not pair up (it never closed).
    """
    if columns < 2 or (len(cells) == columns and not unbalanced):
        return ""
    swallowed = sum(
        1 for cell in cells if "\n" in cell or "\r" in cell
        for text_line in cell.splitlines()[1:] if text_line.count(delimiter) >= columns - 1
    )
    if not swallowed:
        return ""
    return (f"a quote opened in this row is not closed before text line {last} (an unterminated quote?): "
            f"text lines {first}-{last} were read as one cell, and the "
            f"{f'{swallowed} rows' if swallowed > 1 else 'row'} inside it {'were' if swallowed > 1 else 'was'} "
            "not ingested; close the quote and upload the file again")


def text_decode(data: bytes, name: str) -> tuple[str, str]:
    """The file's text, and the encoding it was read as when that was not UTF-8 ('' for UTF-8).

    UTF-8 (with or without BOM) and UTF-16 with a BOM are taken as they say; anything else is
    detected (charset-normalizer): a Shift-JIS or Windows-1251 file is read as such, not as mojibake.
    A short Western text the detector cannot place between the Windows code pages is read as
    Windows-1252. Bytes that fit no encoding raise ``UserInputError``.
    """
    # Excel's "Unicode text" export is UTF-16 with a BOM; without this check it would look binary.
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), ""
        except UnicodeDecodeError as error:
            raise UserInputError(f"{name}: cannot be decoded as text ({error.reason})") from error
    # NUL bytes never occur in text encodings we accept: this is a binary file (an .xlsx renamed .csv...).
    if b"\x00" in data:
        raise UserInputError(f"{name}: cannot be decoded as text (it looks like a binary file)")
    try:
        return data.decode("utf-8-sig"), ""
    except UnicodeDecodeError:
        pass
    encoding = encoding_detect(data)
    if encoding is None:
        raise UserInputError(f"{name}: cannot be decoded as text (not UTF-8, and no other text encoding fits "
                             "its bytes); save it as UTF-8")
    return data.decode(encoding), encoding


def encoding_detect(data: bytes) -> str | None:
    """The text encoding of ``data`` (not UTF-8) as charset-normalizer judges it, or None when none fits."""
    from charset_normalizer import from_bytes

    # Without NUL bytes (refused before) a text is not UTF-16/32, whatever a short sample suggests.
    matches = [match for match in from_bytes(data) if not match.encoding.startswith(("utf_16", "utf_32"))]
    if not matches:
        return None
    best = min(match.chaos for match in matches)
    likeliest = [match for match in matches if match.chaos <= best + 0.01]
    for preferred in PREFERRED_ENCODINGS:
        if any(preferred in match.could_be_from_charset for match in likeliest):
            return preferred
    return likeliest[0].encoding


def delimiter_detect(text: str, fallback: str) -> str:
    """The delimiter among ",;\\t|", by csv.Sniffer, checked against the header row.

    A header with none of them is a one-column table: then the delimiter is NUL (never in the text,
    see text_decode), so commas in its cells are not taken for column breaks whose cells would be dropped.
    """
    sample = text[:SNIFF_CHARS]
    if len(text) > SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # a cut last line would skew the sniffer's counts
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=CSV_DELIMITERS).delimiter
    except csv.Error:
        sniffed = None
    # The sniffer can be misled by commas in long free-text cells; the header row rarely is.
    counts = _header_delimiter_counts(text)
    if sniffed is not None and counts[sniffed] > 0:
        return sniffed
    # Ties go to the format's own delimiter ("\t" for .tsv): max() keeps the first of equals.
    best = max([fallback, *CSV_DELIMITERS], key=lambda candidate: counts[candidate])
    return best if counts[best] > 0 else SINGLE_COLUMN_DELIMITER


def _header_delimiter_counts(text: str) -> dict[str, int]:
    """How often each candidate delimiter occurs in the first row, outside quoted cells."""
    counts = dict.fromkeys(CSV_DELIMITERS, 0)
    in_quotes = False
    for char in text.lstrip("\r\n"):
        if char == '"':
            in_quotes = not in_quotes  # a doubled quote toggles twice, which is right
        elif char == "\n" and not in_quotes:
            break
        elif char in counts and not in_quotes:
            counts[char] += 1
    return counts


def _xlsx_records(path: Path, name: str, limits: TextLimits) -> Iterator[_Record]:
    invalid = f"{name}: not a valid .xlsx file"
    try:
        workbook, cut_strings = workbook_open(path, limits)
    except XlsxRefused as error:
        raise UserInputError(f"{name}: {error}") from None
    except Exception as error:  # openpyxl lets zip, XML and key errors of a broken file through as they are
        raise UserInputError(invalid) from error
    try:
        if not workbook.worksheets:
            raise UserInputError(f"{name}: the workbook has no worksheet")
        sheet = workbook.worksheets[0]
        try:
            # read-only sheets yield empty rows for missing row numbers, so enumerate gives the true line.
            for line, row in enumerate(sheet.iter_rows(), start=1):
                cells = [cell_text(cell.value, getattr(cell, "number_format", None)) for cell in row]
                record = _record_cut(line, cells, limits)
                # A shared string was cut while the workbook was opened: say how long it really was.
                record.cut.update((index, cut_strings[cell]) for index, cell in enumerate(cells)
                                  if cell in cut_strings)
                yield record
        except Exception as error:  # a sheet whose XML is broken only fails while being read
            raise UserInputError(invalid) from error
    finally:
        workbook.close()  # read-only mode keeps the file open until closed


def _record_cut(line: int, cells: list[str], limits: TextLimits) -> _Record:
    """The record with each cell cut to ``limits.cell`` and all of them to ``limits.row`` characters."""
    record = _Record(line=line, cells=cells)
    room = limits.row
    for index, cell in enumerate(cells):
        keep = min(limits.cell, max(room, 0))
        if len(cell) > keep:
            record.cut[index] = len(cell)
            cells[index] = cell[:keep]
        room -= len(cells[index])
    return record


def cell_text(value: object, number_format: str | None = None) -> str:
    """A spreadsheet cell's value as text, close to what the spreadsheet shows."""
    if value is None:
        return ""
    if isinstance(value, bool):  # before int: bool is an int
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float) and number_format and "%" in number_format:
        return _number_text(value * 100) + "%"  # stored as 0.15, shown as 15%
    if isinstance(value, int | float):
        return _number_text(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()  # a date typed in a cell comes back as midnight
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _number_text(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 3.0 -> "3": spreadsheets store every number as a float
    if isinstance(value, float):
        return f"{value:.15g}"  # 15 significant digits, as Excel shows: 0.1 + 0.2 -> "0.3"
    return str(value)


def _header_notes(header: _Record, headers: list[str], limits: TextLimits) -> list[str]:
    notes = [f"header of column {index + 1} cut from {length:,} to {limits.cell:,} characters"
             for index, length in sorted(header.cut.items())]
    notes += [f"header of column {index + 1} cut from {len(header_name):,} to {HEADER_MAX_CHARS} characters"
              for index, header_name in enumerate(headers)
              if len(header_name) > HEADER_MAX_CHARS and index not in header.cut]
    return notes


def _row_notes(record: _Record, headers: list[str], limits: TextLimits) -> list[str]:
    """What reading changed in the row: cells cut to the limits, cells past the header dropped."""
    def column(index: int) -> str:
        return headers[index] if index < len(headers) else f"column {index + 1}"

    cut = [f"{column(index)} cut from {length:,} to {len(record.cells[index]):,} characters"
           for index, length in sorted(record.cut.items())]
    if len(cut) > NOTE_CELLS_NAMED:
        limit = f"{limits.row:,} characters per row and {limits.cell:,} per cell"
        cut = cut[:NOTE_CELLS_NAMED] + [f"{len(cut) - NOTE_CELLS_NAMED} more cells cut (the limits are {limit})"]
    notes = cut
    extra = [cell for cell in record.cells[len(headers):] if cell.strip()]
    if extra:
        shown = ", ".join(repr(_shortened(cell)) for cell in extra[:NOTE_CELLS_NAMED])
        more = f" and {len(extra) - NOTE_CELLS_NAMED} more" if len(extra) > NOTE_CELLS_NAMED else ""
        notes.append(f"{len(record.cells)} cells but the header has {len(headers)} columns: "
                     f"{len(extra)} cells past column {len(headers)} were dropped ({shown}{more})")
    return notes


def _shortened(text: str, limit: int = 40) -> str:
    text = text_normalise(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


# --- header and mapping ---------------------------------------------------------------------------


def headers_clean(cells: list[str]) -> list[str]:
    """Header names, normalised, with blank ones named "column N" and repeated ones "name (column N)"."""
    headers: list[str] = []
    seen: set[str] = set()
    for position, cell in enumerate(cells, start=1):
        header = text_normalise(cell)
        if not header:
            header = f"column {position}"
        elif header.casefold() in seen:
            header = f"{header} (column {position})"
        while header.casefold() in seen:  # a generated name can itself be taken by a later real one
            header = f"{header}'"
        seen.add(header.casefold())
        headers.append(header)
    return headers


def header_key(header: str) -> str:
    """The form two header spellings are compared in: "Product_Name" and "product name" are the same."""
    return _HEADER_KEY_RE.sub("", header).casefold()


def mapping_resolve(headers: list[str], mapping: dict[str, str] | None, *, name: str) -> ColumnMapping:
    """The column for each role: the explicit one when given, else the first header with a known name."""
    explicit = _mapping_explicit(headers, mapping or {}, name)
    # A column given explicitly for one role is not also picked automatically for another.
    taken = set(explicit.values())
    resolved: dict[str, str | None] = {}
    for role in ROLES:
        if role in explicit:
            resolved[role] = explicit[role]
            continue
        resolved[role] = _header_by_alias(headers, ROLE_ALIASES[role], taken)
        if resolved[role] is not None:
            taken.add(resolved[role])
    if not any(resolved[role] for role in TEXT_ROLES):
        raise UserInputError(
            f"{name}: no title or description column (the header is: {', '.join(headers)}); "
            "name a column for title or description"
        )
    return ColumnMapping(**resolved)


def _mapping_explicit(headers: list[str], mapping: dict[str, str], name: str) -> dict[str, str]:
    explicit: dict[str, str] = {}
    for role, column in mapping.items():
        if role not in ROLES:
            raise UserInputError(f"{name}: unknown role '{role}' in the column mapping (roles: {', '.join(ROLES)})")
        if not column or not column.strip():
            continue  # empty means "auto"
        header = _header_match(headers, column)
        if header is None:
            raise UserInputError(
                f"{name}: column '{column}' (given for {role}) is not in the header: {', '.join(headers)}"
            )
        explicit[role] = header
    return explicit


def _header_match(headers: list[str], column: str) -> str | None:
    # Exact first; then the same loose spelling as the defaults, since people retype names by hand.
    wanted = text_normalise(column)
    if wanted in headers:
        return wanted
    return next((header for header in headers if header_key(header) == header_key(wanted)), None)


def _header_by_alias(headers: list[str], aliases: Iterable[str], taken: set[str]) -> str | None:
    keys = {header_key(header): header for header in reversed(headers) if header not in taken}
    return next((keys[header_key(alias)] for alias in aliases if header_key(alias) in keys), None)


# --- rows -----------------------------------------------------------------------------------------


def row_build(line: int, cells: list[str], headers: list[str], mapping: ColumnMapping) -> TableRow | RowFailure:
    """One data row as a TableRow, or a RowFailure saying why it cannot be an item."""
    # zip() drops cells past the header (stray trailing delimiters); missing cells read as ''.
    values = dict(zip(headers, cells, strict=False))

    def role_value(role: str) -> str:
        column = getattr(mapping, role)
        return values.get(column, "") if column else ""

    title = text_normalise(role_value("title"))
    description = text_normalise(role_value("description"))
    if not title and not description:
        return RowFailure(line=line, reason=NO_TEXT_REASON)
    if not title:
        title = title_from(description)
    specs, specs_text = _specs_cell(role_value("specs"))
    with_role = {column for column in mapping.as_dict().values() if column}
    for header in headers:
        value = text_normalise(values.get(header, ""))
        if header not in with_role and value:
            specs[header] = value  # a dedicated column is more deliberate than a pair inside the specs text
    return TableRow(
        line=line,
        external_id=text_normalise(role_value("id")),
        title=title,
        description=description,
        specs=specs,
        specs_text=specs_text,
        image_ref=role_value("image").strip(),
    )


def _specs_cell(raw: str) -> tuple[dict[str, str], str]:
    parsed = specs_parse(raw)
    if parsed is None:
        return {}, text_normalise(raw)
    return parsed, ""


def title_from(description: str, limit: int = TITLE_MAX_CHARS) -> str:
    """The description's first ``limit`` characters, cut at a word boundary when there is one."""
    if len(description) <= limit:
        return description
    # Look one character further: a word ending exactly at the limit is whole.
    cut = description[: limit + 1].rfind(" ")
    if cut <= 0:
        return description[:limit]
    return description[:cut].rstrip(" ,;:-")


def text_normalise(text: str) -> str:
    return _WHITESPACE_RE.sub(" ", text).strip()


def _is_blank(cells: list[str]) -> bool:
    return not any(cell.strip() for cell in cells)


# --- specs parsing --------------------------------------------------------------------------------


def _specs_from_json(text: str) -> dict[str, str] | None:
    if not text.lstrip().startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None  # broken JSON: let the key:value parsers (or free text) have it
    if not isinstance(data, dict):
        return None
    return _pairs_merge((str(key), _json_value_text(value)) for key, value in data.items())


def _json_value_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str | int | float) for item in value):
        return ", ".join(item if isinstance(item, str) else json.dumps(item) for item in value)
    return json.dumps(value, ensure_ascii=False)  # numbers, booleans (true/false) and nested objects


def _pairs_split(text: str, separator: re.Pattern[str]) -> list[tuple[str, str]] | None:
    """The pairs of ``text`` split by ``separator``, or None when any piece is not a pair."""
    pieces = [_BULLET_RE.sub("", piece.strip()) for piece in separator.split(text)]
    pairs = []
    for piece in pieces:
        if not piece:
            continue
        pair = _pair_parse(piece)
        if pair is None:
            return None
        pairs.append(pair)
    return pairs or None


def _pair_parse(piece: str) -> tuple[str, str] | None:
    match = _PAIR_RE.match(piece)
    if match is None:
        return None
    key, value = text_normalise(match["key"]), text_normalise(match["value"])
    if not key or len(key) > SPEC_KEY_MAX_CHARS or len(key.split()) > SPEC_KEY_MAX_WORDS:
        return None
    if _SENTENCE_BREAK_RE.search(key) or value.startswith("//"):  # "Made in Italy. Note: ...", "http://..."
        return None
    return key, value


def _pairs_merge(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for key, value in pairs:
        key, value = text_normalise(key), text_normalise(value)
        if not key or not value:
            continue
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return merged
