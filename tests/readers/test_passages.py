"""Long text is cut into passages an encoder sees whole: by paragraph, then sentence, never mid-word."""
import re

from multimodal.readers.passages import text_passages


def _sentence(number: int, words: int = 12) -> str:
    return " ".join(f"w{number}x{index}" for index in range(words - 1)) + f" end{number}."


def test_short_text_is_one_passage_spanning_it():
    text = "  A red bicycle leans on a wall.  "
    [passage] = text_passages(text, max_words=50, overlap_words=10)
    assert passage.text == "A red bicycle leans on a wall."
    assert text[passage.start:passage.end] == passage.text
    assert text_passages(" \n ", max_words=50, overlap_words=10) == []


def test_passages_end_at_sentence_ends_within_the_budget_and_overlap_from_a_sentence_start():
    text = " ".join(_sentence(number) for number in range(20))  # one paragraph of 240 words
    passages = text_passages(text, max_words=50, overlap_words=15)
    assert len(passages) > 4
    for passage in passages:
        assert text[passage.start:passage.end] == passage.text
        assert len(passage.text.split()) <= 50
        assert passage.text.startswith("w") and re.match(r"w\d+x0 ", passage.text)  # a sentence's first word
    for passage in passages[:-1]:
        assert passage.text.endswith(".")  # a whole sentence: 48 words of four sentences, not 50
    for before, after in zip(passages, passages[1:]):
        assert after.start < before.end  # the last sentence (12 words <= 15) is repeated
        assert before.text.endswith(text[after.start:before.end])
    assert passages[-1].end == len(text)


def test_paragraph_ends_are_preferred_and_not_overlapped():
    paragraphs = [_sentence(1, 20) + " " + _sentence(2, 10), _sentence(3, 25), _sentence(4, 8)]
    text = "\n\n".join(paragraphs)
    passages = text_passages(text, max_words=50, overlap_words=10)
    # 30 words, then 25 + 8 (two paragraphs that fit together): cut at the first paragraph's end.
    assert [passage.text for passage in passages] == [paragraphs[0], paragraphs[1] + "\n\n" + paragraphs[2]]


def test_a_sentence_longer_than_a_passage_is_cut_between_words():
    words = [f"word{index}" for index in range(130)]
    text = " ".join(words)
    passages = text_passages(text, max_words=50, overlap_words=10)
    assert [len(passage.text.split()) for passage in passages] == [50, 50, 50]
    assert passages[1].text.split()[0] == "word40"  # ten words of overlap
    assert {word for passage in passages for word in passage.text.split()} == set(words)
