"""Reading product tables (CSV, TSV, XLSX) into rows: mapping, specs, encodings, failures, limits."""
import datetime as dt

import pytest
from openpyxl import Workbook

from multimodal.errors import UserInputError
from multimodal.readers.tabular import ColumnMapping, RowFailure, Table, TableRow, specs_parse, table_read


def csv_file(tmp_path, text: str, name: str = "products.csv", encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def xlsx_file(tmp_path, rows: list[list], name: str = "products.xlsx", number_formats: dict | None = None):
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    for coordinate, number_format in (number_formats or {}).items():
        sheet[coordinate].number_format = number_format
    path = tmp_path / name
    workbook.save(path)
    return path


def read_csv(tmp_path, text: str, name: str = "products.csv", **kwargs) -> Table:
    return table_read(csv_file(tmp_path, text, name), name=name, **kwargs)


# --- mapping --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            "SKU,Product Name,Desc,Specifications,Image Path",
            ColumnMapping(
                id="SKU", title="Product Name", description="Desc", specs="Specifications", image="Image Path"
            ),
        ),
        (
            "product_id,NAME,body,attributes,image-file",
            ColumnMapping(id="product_id", title="NAME", description="body", specs="attributes", image="image-file"),
        ),
        (
            "Item ID,Title,Details,Features,Photo",
            ColumnMapping(id="Item ID", title="Title", description="Details", specs="Features", image="Photo"),
        ),
        ("code,product,summary", ColumnMapping(id="code", title="product", description="summary")),
        ("description,specs", ColumnMapping(description="description", specs="specs")),
    ],
)
def test_default_mapping_recognises_header_spellings(tmp_path, header, expected):
    table = read_csv(tmp_path, header + "\n" + ",".join(f"v{i}" for i in range(header.count(",") + 1)) + "\n")

    assert table.mapping == expected
    assert table.headers == header.split(",")


def test_default_mapping_prefers_earlier_alias_and_leaves_the_other_column_to_specs(tmp_path):
    table = read_csv(tmp_path, "Product Name,Name,Description\nLong name,Short,A bike\n")

    assert table.mapping.title == "Name"
    assert table.rows[0].title == "Short"
    assert table.rows[0].specs == {"Product Name": "Long name"}


def test_explicit_mapping_overrides_default_per_role(tmp_path):
    table = read_csv(
        tmp_path,
        "sku,name,label,description,notes\n1,Internal name,Nice Bike,Red bike,Ships fast\n",
        mapping={"title": "label", "description": "", "id": "SKU"},
    )

    assert table.mapping == ColumnMapping(id="sku", title="label", description="description")
    row = table.rows[0]
    assert (row.external_id, row.title, row.description) == ("1", "Nice Bike", "Red bike")
    assert row.specs == {"name": "Internal name", "notes": "Ships fast"}


def test_explicitly_used_column_is_not_also_picked_automatically(tmp_path):
    table = read_csv(tmp_path, "title,description\nA bike,Red\n", mapping={"description": "title"})

    assert table.mapping.description == "title"
    assert table.mapping.title is None
    assert table.rows[0].description == "A bike"
    assert table.rows[0].specs == {"description": "Red"}


def test_unknown_explicit_column_raises_naming_the_header(tmp_path):
    with pytest.raises(UserInputError) as raised:
        read_csv(tmp_path, "a,b,c\n1,2,3\n", mapping={"title": "Foo"})

    assert str(raised.value) == "products.csv: column 'Foo' (given for title) is not in the header: a, b, c"


def test_unknown_role_in_mapping_raises(tmp_path):
    with pytest.raises(UserInputError, match=r"^products\.csv: unknown role 'colour'"):
        read_csv(tmp_path, "title\nA\n", mapping={"colour": "title"})


def test_table_without_any_text_column_raises(tmp_path):
    with pytest.raises(UserInputError, match=r"^products\.csv: no title or description column.*sku, price"):
        read_csv(tmp_path, "sku,price\n1,10\n")


def test_blank_and_duplicate_headers_are_renamed_not_rejected(tmp_path):
    table = read_csv(tmp_path, "title,colour,,colour\nBike,red,x,blue\n")

    assert table.headers == ["title", "colour", "column 3", "colour (column 4)"]
    assert table.rows[0].specs == {"colour": "red", "column 3": "x", "colour (column 4)": "blue"}


# --- rows and specs -------------------------------------------------------------------------------


def test_unmapped_columns_land_in_specs_without_empty_values(tmp_path):
    table = read_csv(tmp_path, "name,description,colour,weight,price\nBike,Fast,red,,199\n")

    assert table.rows[0].specs == {"colour": "red", "price": "199"}


def test_specs_column_key_value_pairs_merge_with_unmapped_columns(tmp_path):
    table = read_csv(tmp_path, 'title,specs,colour\nBike,"size: M; frame: steel",red\n')

    row = table.rows[0]
    assert row.specs == {"size": "M", "frame": "steel", "colour": "red"}
    assert row.specs_text == ""


def test_specs_column_json_object_is_parsed(tmp_path):
    table = read_csv(tmp_path, 'title,specs\nBike,"{""colour"": ""red"", ""gears"": 21, ""tags"": [""city"", 2]}"\n')

    assert table.rows[0].specs == {"colour": "red", "gears": "21", "tags": "city, 2"}


def test_free_text_specs_are_kept_as_specs_text(tmp_path):
    table = read_csv(tmp_path, 'title,specs\nBike,"Light frame,\n  great for   commuting"\n')

    row = table.rows[0]
    assert row.specs == {}
    assert row.specs_text == "Light frame, great for commuting"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"colour": " red ", "size": null, "waterproof": true}', {"colour": "red", "waterproof": "true"}),
        ("colour: red; size: M", {"colour": "red", "size": "M"}),
        ("colour=red, size=M", {"colour": "red", "size": "M"}),
        ("Colour: red\nScreen size: 13 in\n", {"Colour": "red", "Screen size": "13 in"}),
        ("- colour: red\n- size: M", {"colour": "red", "size": "M"}),
        ("colour: red, blue; size: M", {"colour": "red, blue"} | {"size": "M"}),
        ("Dimensions: 10, 20, 30", {"Dimensions": "10, 20, 30"}),
        ("colour: red\ncolour: blue", {"colour": "red, blue"}),
        ("note: hand wash; cold\nsize: M", {"note": "hand wash; cold", "size": "M"}),
        ("", {}),
    ],
)
def test_specs_parse_accepts_pair_formats(text, expected):
    assert specs_parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "A lightweight frame, great for commuting.",
        "Made in Italy. Note: hand wash only",
        "See https://example.com/bike",
        "[1, 2, 3]",
        "colour: red\nand a sentence without a colon",
    ],
)
def test_specs_parse_returns_none_for_free_text(text):
    assert specs_parse(text) is None


def test_title_falls_back_to_description_cut_at_a_word_boundary(tmp_path):
    description = "A sturdy steel city bicycle with hub gears, mudguards, a rack and dynamo lights for every day"
    table = read_csv(tmp_path, f'title,description\n,"{description}"\n')

    title = table.rows[0].title
    assert len(title) <= 80
    assert description.startswith(title)
    assert title == "A sturdy steel city bicycle with hub gears, mudguards, a rack and dynamo lights"
    assert table.rows[0].description == description


def test_id_and_image_are_taken_as_written(tmp_path):
    table = read_csv(tmp_path, "sku,title,image\n00123,Bike,images/bike 1.jpg \n")

    row = table.rows[0]
    assert (row.external_id, row.image_ref) == ("00123", "images/bike 1.jpg")


def test_missing_id_and_image_columns_give_empty_strings(tmp_path):
    row = read_csv(tmp_path, "title\nBike\n").rows[0]

    assert row == TableRow(line=2, external_id="", title="Bike", description="", specs={}, specs_text="", image_ref="")


def test_row_without_text_fails_alone_with_its_spreadsheet_line(tmp_path):
    text = 'title,description,colour\nBike,"Two\nlines",red\n,,blue\nChair,Wooden,brown\n'
    table = read_csv(tmp_path, text)

    assert [row.title for row in table.rows] == ["Bike", "Chair"]
    # The quoted cell spans two text lines but one spreadsheet row, so the failing row is line 3.
    assert table.failures == [RowFailure(line=3, reason="row without text (title and description are empty)")]
    assert [row.line for row in table.rows] == [2, 4]


def test_entirely_empty_rows_are_skipped_and_do_not_shift_line_numbers(tmp_path):
    table = read_csv(tmp_path, "\ntitle,description\n\n,,\nBike,Red\n   ,\t\n\nChair,Wooden\n")

    assert [(row.line, row.title) for row in table.rows] == [(5, "Bike"), (8, "Chair")]
    assert table.failures == []


def test_extra_cells_are_ignored_and_missing_cells_are_empty(tmp_path):
    table = read_csv(tmp_path, "title,description,colour\nBike,Red,red,surplus,more\nChair\n")

    assert table.rows[0].specs == {"colour": "red"}
    assert (table.rows[1].title, table.rows[1].description, table.rows[1].specs) == ("Chair", "", {})


def test_quoted_multiline_cells_are_normalised(tmp_path):
    text = 'name,description,size\n"City\tBike","Steel frame,\r\n\r\n  hub gears\n","  M  "\n'
    row = read_csv(tmp_path, text).rows[0]

    assert (row.title, row.description, row.specs) == ("City Bike", "Steel frame, hub gears", {"size": "M"})


# --- CSV dialects and encodings -------------------------------------------------------------------


def test_semicolon_delimited_csv_with_commas_in_text(tmp_path):
    text = "name;description;price\nBike;Light, fast, and red;199,00\nChair;Oak, waxed;89,50\n"
    table = read_csv(tmp_path, text)

    assert table.headers == ["name", "description", "price"]
    assert [(row.title, row.description, row.specs) for row in table.rows] == [
        ("Bike", "Light, fast, and red", {"price": "199,00"}),
        ("Chair", "Oak, waxed", {"price": "89,50"}),
    ]


def test_pipe_delimited_csv(tmp_path):
    table = read_csv(tmp_path, "name|description\nBike|Red, fast\n")

    assert (table.rows[0].title, table.rows[0].description) == ("Bike", "Red, fast")


def test_tsv_file(tmp_path):
    table = read_csv(tmp_path, "sku\ttitle\tdescription\n7\tBike\tRed, light; fast\n", name="products.tsv")

    row = table.rows[0]
    assert (row.external_id, row.title, row.description) == ("7", "Bike", "Red, light; fast")


def test_single_column_csv_keeps_commas_in_its_cells(tmp_path):
    table = read_csv(tmp_path, "description\nA red bike, fast and light\nA wooden chair; oak\n")

    assert [row.description for row in table.rows] == ["A red bike, fast and light", "A wooden chair; oak"]


def test_delimiters_inside_quoted_header_cells_do_not_decide_the_dialect(tmp_path):
    table = read_csv(tmp_path, '"Name, full";"Product\nDescription"\nBike;Red, fast\n', mapping={"title": "Name, full"})

    assert table.headers == ["Name, full", "Product Description"]
    assert (table.rows[0].title, table.rows[0].specs) == ("Bike", {"Product Description": "Red, fast"})


def test_latin1_file_is_decoded(tmp_path):
    path = csv_file(tmp_path, "name,description\nCafé crème,Größe: groß — 2€\n", encoding="cp1252")
    row = table_read(path, name="products.csv").rows[0]

    assert (row.title, row.description) == ("Café crème", "Größe: groß — 2€")


def test_bytes_outside_cp1252_are_read_in_the_detected_encoding_which_the_table_names(tmp_path):
    path = tmp_path / "products.csv"
    path.write_bytes(b"name\nCaf\xe9 \x81\n")

    table = table_read(path, name="products.csv")
    assert table.rows[0].title.startswith("Caf")
    assert len(table.notes) == 1 and table.notes[0].startswith("not UTF-8: read as ")


def test_utf8_bom_is_not_part_of_the_first_header(tmp_path):
    path = csv_file(tmp_path, "\ufeffsku,title\n1,Bike\n")

    assert table_read(path, name="products.csv").mapping.id == "sku"


def test_utf16_export_with_bom_is_decoded(tmp_path):
    path = csv_file(tmp_path, "\ufefftitle\tdescription\nVélo\tRouge\n", name="products.tsv", encoding="utf-16-le")

    row = table_read(path, name="products.tsv").rows[0]
    assert (row.title, row.description) == ("Vélo", "Rouge")


def test_binary_file_named_csv_raises(tmp_path):
    path = tmp_path / "products.csv"
    path.write_bytes(b"PK\x03\x04\x00\x00binary")

    with pytest.raises(UserInputError, match=r"^products\.csv: cannot be decoded as text"):
        table_read(path, name="products.csv")


# --- whole-file errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"\n\r\n  \n"])
def test_empty_file_raises(tmp_path, content):
    path = tmp_path / "products.csv"
    path.write_bytes(content)

    with pytest.raises(UserInputError, match=r"^products\.csv: the file is empty"):
        table_read(path, name="products.csv")


def test_file_of_empty_rows_has_no_header(tmp_path):
    with pytest.raises(UserInputError, match=r"^products\.csv: no header row"):
        read_csv(tmp_path, ",,\n , ,\t\n")


def test_header_only_file_gives_no_rows(tmp_path):
    table = read_csv(tmp_path, "title,description\n")

    assert (table.rows, table.failures) == ([], [])


def test_too_many_rows_raises_with_the_count(tmp_path):
    text = "title\n" + "".join(f"item {i}\n\n" for i in range(7))

    with pytest.raises(UserInputError) as raised:
        read_csv(tmp_path, text, max_rows=5)
    assert str(raised.value) == "products.csv: 7 rows, the limit is 5"


def test_row_limit_counts_failed_rows_but_not_empty_ones(tmp_path):
    table = read_csv(tmp_path, "title,colour\nA,red\n,blue\n\n\nB,green\n", max_rows=3)

    assert len(table.rows) == 2
    assert len(table.failures) == 1


def test_unknown_extension_raises(tmp_path):
    path = csv_file(tmp_path, "title\nBike\n", name="products.txt")

    with pytest.raises(UserInputError, match=r"^products\.txt: not a table file"):
        table_read(path, name="products.txt")


def test_display_name_not_path_picks_the_format(tmp_path):
    path = csv_file(tmp_path, "title\tdescription\nBike\tRed, fast\n", name="upload-1234")

    table = table_read(path, name="catalogue.tsv")
    assert table.rows[0].description == "Red, fast"


# --- XLSX -----------------------------------------------------------------------------------------


def test_xlsx_numbers_dates_and_booleans_become_text(tmp_path):
    path = xlsx_file(
        tmp_path,
        [
            ["SKU", "Product Name", "Description", "price", "weight", "released", "restocked", "in stock", "cotton"],
            [123, "Bike", "Red\nbike", 199.0, 2.5, dt.datetime(2024, 3, 1), dt.datetime(2024, 3, 1, 14, 30), True, 0.8],
        ],
        number_formats={"I2": "0%"},
    )
    table = table_read(path, name="products.xlsx")

    row = table.rows[0]
    assert (row.line, row.external_id, row.title, row.description) == (2, "123", "Bike", "Red bike")
    assert row.specs == {
        "price": "199",
        "weight": "2.5",
        "released": "2024-03-01",
        "restocked": "2024-03-01 14:30:00",
        "in stock": "TRUE",
        "cotton": "80%",
    }


def test_xlsx_float_artifacts_are_shown_as_a_spreadsheet_shows_them(tmp_path):
    path = xlsx_file(tmp_path, [["title", "ratio"], ["Bike", 0.1 + 0.2]])

    assert table_read(path, name="products.xlsx").rows[0].specs == {"ratio": "0.3"}


def test_xlsx_failures_and_empty_rows_keep_sheet_row_numbers(tmp_path):
    path = xlsx_file(tmp_path, [["title", "colour"], ["Bike", "red"], [None, None], [None, "blue"], ["Chair", None]])
    table = table_read(path, name="products.xlsx")

    assert [(row.line, row.title) for row in table.rows] == [(2, "Bike"), (5, "Chair")]
    assert table.failures == [RowFailure(line=4, reason="row without text (title and description are empty)")]


def test_xlsx_reads_the_first_sheet(tmp_path):
    workbook = Workbook()
    workbook.active.append(["title"])
    workbook.active.append(["From the first sheet"])
    other = workbook.create_sheet("Other")
    other.append(["title"])
    other.append(["From the second sheet"])
    workbook.active = 1
    path = tmp_path / "products.xlsx"
    workbook.save(path)

    assert [row.title for row in table_read(path, name="products.xlsx").rows] == ["From the first sheet"]


def test_xlsx_explicit_mapping_and_limit(tmp_path):
    path = xlsx_file(tmp_path, [["Artikel", "Text"], ["Rad", "Rot"], ["Stuhl", "Holz"]])

    table = table_read(path, name="products.xlsx", mapping={"title": "artikel"})
    assert [(row.title, row.description) for row in table.rows] == [("Rad", "Rot"), ("Stuhl", "Holz")]
    with pytest.raises(UserInputError, match=r"^products\.xlsx: 2 rows, the limit is 1$"):
        table_read(path, name="products.xlsx", max_rows=1)


@pytest.mark.parametrize("content", [b"", b"this is not a zip", b"PK\x03\x04broken zip"])
def test_corrupt_xlsx_raises(tmp_path, content):
    path = tmp_path / "products.xlsx"
    path.write_bytes(content)

    with pytest.raises(UserInputError, match=r"^products\.xlsx: not a valid \.xlsx file$"):
        table_read(path, name="products.xlsx")


def test_zip_that_is_not_a_workbook_raises_as_corrupt_xlsx(tmp_path):
    import zipfile

    path = tmp_path / "products.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images/bike.jpg", b"not really")

    with pytest.raises(UserInputError, match=r"not a valid \.xlsx file"):
        table_read(path, name="products.xlsx")
