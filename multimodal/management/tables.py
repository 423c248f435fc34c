"""Plain-text tables for commands: a header row, then rows; floats to 4 decimals, numbers right-aligned."""


def table_format(headers: list[str], rows: list[list]) -> str:
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(header), *(len(row[column]) for row in cells)) for column, header in enumerate(headers)]
    numeric = [all(_is_number(row[column]) for row in rows) for column in range(len(headers))]

    def line(values: list[str]) -> str:
        return "  ".join(value.rjust(width) if is_number else value.ljust(width)
                         for value, width, is_number in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(list(headers)), *(line(row) for row in cells)])


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _is_number(value) -> bool:
    if value is None or isinstance(value, (int, float)):
        return True
    try:
        float(str(value))
    except ValueError:
        return False
    return True
