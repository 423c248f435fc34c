"""How much text a table may bring in: shared by the CSV/TSV reader (tabular) and the .xlsx reader (spreadsheets)."""
from dataclasses import dataclass

# Excel's own limit for one cell: a longer cell was not typed in a spreadsheet.
CELL_MAX_CHARS = 32_767


@dataclass(frozen=True)
class TextLimits:
    """Characters kept per cell, per row (all its cells) and per table (all its rows), and the bytes an
    .xlsx may unpack to."""

    cell: int = CELL_MAX_CHARS
    row: int = 100_000
    table: int = 256 * 1024 * 1024
    xlsx_bytes: int = 4096 * 1024 * 1024
