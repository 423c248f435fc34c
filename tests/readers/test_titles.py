"""Short titles from texts, recording parts' titles, and Markdown read as text."""
import pytest

from multimodal.readers.titles import TITLE_CHARS, markdown_plain, part_title, text_title

PARAGRAPH = (
    "Swatches for the spring catalogue arrived on Tuesday from the mill in Porto, in twelve colours and "
    "three weights. The blue linen is the one we liked best. Samples go back on Friday."
)


@pytest.mark.parametrize("text, expected", [
    (PARAGRAPH, "Swatches for the spring catalogue arrived on Tuesday from the mill in Porto, in…"),
    ("A red bicycle. It leans against the wall.", "A red bicycle."),
    ("Dr. Smith came at noon. He left at one.", "Dr. Smith came at noon."),
    ("# Swatches\n\nTwelve colours, three weights.", "Swatches"),
    ("## **Spring** [catalogue](https://example.org/c) ##\nbody", "Spring catalogue"),
    ("Swatches\n========\n\nTwelve colours.", "Swatches"),
    ("Shopping list\nMilk. Eggs.\n", "Shopping list"),
    ("The mill sent swatches in twelve colours\nand three weights. We liked the blue.",
     "The mill sent swatches in twelve colours and three weights."),
])
def test_a_title_is_the_leading_heading_or_the_first_sentence_clipped_at_a_word(text, expected):
    title = text_title(text, fallback="notes")
    assert title == expected
    assert len(title) <= TITLE_CHARS
    assert text_title(title, fallback="notes") == title  # stored titles can be passed through it again


def test_a_text_without_words_is_titled_by_its_file_name():
    assert text_title("#\n\n", fallback="notes") == "notes"
    assert text_title("", fallback="notes") == "notes"


def test_a_word_longer_than_the_limit_is_cut_inside_it():
    title = text_title("x" * 300, fallback="notes")
    assert title == "x" * (TITLE_CHARS - 1) + "…"


def test_a_recording_part_is_its_recording_and_time_range():
    assert part_title("talk", 7.4, 12.9) == "talk · 0:07–0:12"


def test_markdown_reads_as_its_text_line_by_line():
    source = (
        "# Swatches\n\nThe **blue** linen and _soft_ wool, see [the list](https://example.org/list) "
        "and ![a swatch](s.png).\n```python\nprint(snake_case_name)\n```\n> quoted `code`\n- one\n"
        "[list]: https://example.org/list\nTitle\n-----\n"
    )
    assert markdown_plain(source).splitlines() == [
        "Swatches", "", "The blue linen and soft wool, see the list and a swatch.", "print(snake_case_name)",
        "quoted code", "• one", "Title",
    ]
