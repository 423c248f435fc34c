"""Snippets show the query's words, marked, wherever in the text they are."""
from multimodal.retrieval.highlight import highlight_spans, snippet_window


def test_matching_words_are_marked_whole_and_case_insensitively():
    spans = highlight_spans("Red bicycles, a redder wall; RED!", ["red", "bicycle"])
    assert [span["text"] for span in spans if span["match"]] == ["Red", "bicycles", "redder", "RED"]
    assert "".join(span["text"] for span in spans) == "Red bicycles, a redder wall; RED!"


def test_short_query_words_do_not_mark_longer_words():
    spans = highlight_spans("a apple at a", ["a"])
    assert [span["text"] for span in spans if span["match"]] == ["a", "a"]


def test_no_terms_leaves_the_text_unmarked():
    assert highlight_spans("plain text", []) == [{"text": "plain text", "match": False}]


def test_a_match_deep_in_a_long_text_is_inside_the_snippet():
    text = " ".join(["filler"] * 300) + " the golden retriever sleeps " + " ".join(["more"] * 300)
    snippet = snippet_window(text, ["retriever"], limit=120)
    assert "retriever" in snippet
    assert snippet.startswith("…") and snippet.endswith("…")
    assert len(snippet) <= 122


def test_without_a_match_the_snippet_is_the_start_of_the_text():
    text = "first words " + "x " * 400
    assert snippet_window(text, ["absent"], limit=50).startswith("first words")


def test_function_words_are_not_marked_unless_the_query_has_nothing_else():
    spans = highlight_spans("the cat sat on the mat", ["the", "cat", "on"])
    assert [span["text"] for span in spans if span["match"]] == ["cat"]
    only_function_words = highlight_spans("to be or not to be", ["to", "be"])
    assert [span["text"] for span in only_function_words if span["match"]] == ["to", "be", "to", "be"]
