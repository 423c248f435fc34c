"""Opening an .xlsx with bounded memory, whatever its strings hold.

openpyxl's read-only mode streams a sheet's rows, but it reads the shared string table whole, each
string as one Python ``str``: a 188 KB workbook can hold one 131 MB string. Here the shared strings
are read with a streaming XML parser that keeps at most ``limits.cell`` characters of each (and
remembers how long the cut ones were, so the rows using them can say so), and the sheets are
scanned the same way first, since openpyxl holds an inline cell's text whole too. An .xlsx is a zip
archive: the sizes its members declare are checked before anything is unpacked (zipfile never
yields more than a member declares).
"""
import zipfile
from pathlib import Path
from typing import BinaryIO
from xml.parsers import expat

from .limits import TextLimits

CHUNK_BYTES = 1024 * 1024
SHEETS_FOLDER = "xl/worksheets/"


class XlsxRefused(Exception):
    """The workbook breaks a limit; the message says which, for people."""


def workbook_open(path: Path, limits: TextLimits):
    """The workbook at ``path`` opened read-only (values, not formulas) with its shared strings cut.

    Returns ``(workbook, cut)``: ``cut`` maps each shared string that was cut to the number of
    characters it had. Raises ``XlsxRefused`` for a workbook over the limits; openpyxl's own errors
    (a broken file) pass through.
    """
    from openpyxl.reader.excel import ExcelReader
    from openpyxl.xml.constants import SHARED_STRINGS

    with zipfile.ZipFile(path) as archive:
        _sizes_check(archive, limits)
        for member in archive.infolist():
            if member.filename.startswith(SHEETS_FOLDER) and member.filename.endswith(".xml"):
                with archive.open(member) as source:
                    _sheet_scan(source, limits.cell)
    cut: dict[str, int] = {}

    class CappedReader(ExcelReader):
        def read_strings(self) -> None:
            content_type = self.package.find(SHARED_STRINGS)
            if content_type is not None:
                with self.archive.open(content_type.PartName[1:]) as source:
                    self.shared_strings = shared_strings_read(source, limits.cell, cut)

    reader = CappedReader(path, read_only=True, data_only=True)
    reader.read()
    return reader.wb, cut


def _sizes_check(archive: zipfile.ZipFile, limits: TextLimits) -> None:
    unpacked = sum(member.file_size for member in archive.infolist())
    if unpacked > limits.xlsx_bytes:
        raise XlsxRefused(f"unpacks to {unpacked:,} bytes; the limit is {limits.xlsx_bytes:,}")


def _parser() -> expat.XMLParserType:
    parser = expat.ParserCreate(namespace_separator=" ")

    def refuse_doctype(*_args) -> None:
        # A spreadsheet part has no DTD; one could only be there to expand entities.
        raise XlsxRefused("holds a DTD, which spreadsheets do not use")

    parser.StartDoctypeDeclHandler = refuse_doctype
    return parser


def _feed(parser: expat.XMLParserType, source: BinaryIO) -> None:
    while chunk := source.read(CHUNK_BYTES):
        parser.Parse(chunk, False)
    parser.Parse(b"", True)


def _local(tag: str) -> str:
    return tag.rsplit(" ", 1)[-1]


def shared_strings_read(source: BinaryIO, max_chars: int, cut: dict[str, int]) -> list[str]:
    """The shared string table as openpyxl reads it (plain text of each ``<si>``, phonetic runs left
    out), each string kept to ``max_chars`` characters; ``cut`` gets string -> its full length."""
    strings: list[str] = []
    pieces: list[str] = []
    length = 0
    phonetic = 0  # depth inside <rPh>: a reading aid, not the cell's text
    in_text = False

    def start(tag: str, _attributes: dict) -> None:
        nonlocal length, phonetic, in_text
        name = _local(tag)
        if name == "si":
            pieces.clear()
            length = 0
        elif name == "rPh":
            phonetic += 1
        elif name == "t" and not phonetic:
            in_text = True

    def end(tag: str) -> None:
        nonlocal phonetic, in_text
        name = _local(tag)
        if name == "si":
            text = "".join(pieces).replace("x005F_", "")  # as openpyxl unescapes
            if length > max_chars:
                cut[text] = length
            strings.append(text)
        elif name == "rPh":
            phonetic -= 1
        elif name == "t":
            in_text = False

    def characters(data: str) -> None:
        nonlocal length
        if not in_text:
            return
        room = max_chars - length
        if room > 0:
            pieces.append(data[:room])
        length += len(data)

    parser = _parser()
    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.CharacterDataHandler = characters
    _feed(parser, source)
    return strings


def _sheet_scan(source: BinaryIO, max_chars: int) -> None:
    """Refuse a sheet with a cell whose own text (an inline string, a value) is over ``max_chars``.

    Spreadsheet programs store long text as shared strings (which are cut, see above) and cap a
    cell at 32,767 characters; a longer inline cell was made to be read whole.
    """
    reference = ""
    length = 0

    def start(tag: str, attributes: dict) -> None:
        nonlocal reference, length
        if _local(tag) == "c":
            reference, length = attributes.get("r", "?"), 0

    def characters(data: str) -> None:
        nonlocal length
        if reference:
            length += len(data)
            if length > max_chars:
                raise XlsxRefused(f"cell {reference} holds more than {max_chars:,} characters of its own "
                                  "(not a shared string); the limit is that many")

    def end(tag: str) -> None:
        nonlocal reference
        if _local(tag) == "c":
            reference = ""

    parser = _parser()
    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.CharacterDataHandler = characters
    _feed(parser, source)
