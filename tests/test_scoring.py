"""The rule-based scorer on tricky answers: letters, case, punctuation, articles, numbers, empty."""

from __future__ import annotations

import pytest

from mini_o3_lite import scoring

CHOICES = ["red", "a green cat", "3", "blue"]


@pytest.mark.parametrize("answer, reference, choices, expected", [
    ("red", "red", None, True),
    ("Red", "red", None, True),
    ("RED.", "red", None, True),
    ("  red  ", "red", None, True),
    ("the red", "red", None, True),
    ("a red one", "red one", None, True),
    ("red!", "red", None, True),
    ("dark red", "red", None, False),  # no partial credit
    ("reddish", "red", None, False),
    ("two", "2", None, True),
    ("Twenty", "20", None, True),
    ("3.0", "3", None, False),  # numbers compared as written
    ("3.5", "3.5", None, True),
    ("3.5.", "3.5", None, True),  # the full stop goes, the decimal point stays
    ("", "red", None, False),
    (None, "red", None, False),
    ("   ", "red", None, False),
    ("...", "...", None, False),  # nothing left to compare is never right
    ("A", "A", CHOICES, True),
    ("a", "A", CHOICES, True),
    ("(B)", "B", CHOICES, True),
    ("B.", "B", CHOICES, True),
    ("b) green cat", "B", CHOICES, True),
    ("Option D", "D", CHOICES, True),
    ("blue", "D", CHOICES, True),  # the choice's text for its letter
    ("green cat", "B", CHOICES, True),  # articles dropped on both sides
    ("A cat", "B", CHOICES, False),  # an article, not the letter A; and not "a green cat"
    ("C", "3", CHOICES, True),
    ("three", "C", CHOICES, True),
    ("E", "A", CHOICES, False),  # a letter beyond the choices is just a word
    ("B", "A", CHOICES, False),
    ("", "A", CHOICES, False),
])
def test_score(answer, reference, choices, expected):
    assert scoring.score(answer, reference, choices) is expected


def test_normalise_is_idempotent():
    for text in ["The Red.", "two  cats", "3.5", "a) b", "Hello, World!"]:
        once = scoring.normalise(text)
        assert scoring.normalise(once) == once


def test_judge_records_its_reply():
    prompts = []

    def judge(prompt):
        prompts.append(prompt)
        return "Yes, they mean the same."

    assert scoring.judge_score(judge, "What colour?", "crimson", "red") == (True, "Yes, they mean the same.")
    assert "Reference answer: red" in prompts[0] and "Candidate answer: crimson" in prompts[0]
    assert scoring.judge_score(judge, "What colour?", "", "red") == (False, "")
    assert len(prompts) == 1  # an empty answer never reaches the judge


def test_an_answer_of_only_an_article_is_kept():
    assert scoring.normalise("A") == "a" and scoring.score("A", "a") and not scoring.score("the", "a")


def test_judge_sees_choice_text_not_letters():
    prompts = []
    scoring.judge_score(lambda p: prompts.append(p) or "no", "Which?", "(b)", "A", choices=["cat", "dog"])
    assert "Candidate answer: dog" in prompts[0] and "Reference answer: cat" in prompts[0]
