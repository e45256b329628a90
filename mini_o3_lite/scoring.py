"""Rule-based answer scoring: is the agent's `<answer>` the reference answer?

Mini-o3 scores benchmark answers with a GPT-4o judge (and rule-based accuracy during RL). The kit
scores with documented rules by default, so every number can be recomputed offline:

1. An empty or missing answer is wrong.
2. Multiple choice (the record has `choices`): a letter ("B", "(b)", "B.", "Option B", "b) cat")
   stands for that choice; a reference given as a letter is turned into its choice text too. Then
   the choice texts are compared under rule 3.
3. Short answers are normalised before they are compared: lower case; punctuation dropped; the
   articles a/an/the dropped (unless nothing else is left: "A" stays "a"); number words zero..twenty
   written as digits; whitespace collapsed. "The Red." == "red", "two" == "2", "3.0" != "3"
   (numbers are compared as written after rule 3).
4. No partial credit and no substring matching: "dark red" is not "red" (a judge could say it is:
   where the two disagree is listed in papers/evaluation.md).

`judge_score` puts any local model in the judge's role for free-form answers (its prompt is
`JUDGE_PROMPT`); letters are turned into their choice text first, so the judge compares meanings.
`evaluate.judged` scores an evaluation's rows with it when a judge is given: `mini-o3-lite eval
--benchmark NAME --judge DIR` makes the checkpoint at DIR the judge (`evaluate.local_judge`).
"""

from __future__ import annotations

import re
import string

ARTICLES = {"a", "an", "the"}
NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
LETTER = re.compile(r"^\s*(?:option\s+)?\(?([a-z])\)?(?:[.):]|$)", re.IGNORECASE)  # "A cat" is not a letter
JUDGE_PROMPT = (
    "Question: {question}\nReference answer: {reference}\nCandidate answer: {answer}\n"
    "Does the candidate answer mean the same as the reference answer? Reply with yes or no."
)


def normalise(text: str | None) -> str:
    """Rule 3: the comparable form of a short answer."""
    if not text:
        return ""
    text = text.lower().translate(str.maketrans(string.punctuation.replace(".", ""), " " * 31))
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)  # a full stop goes, a decimal point stays
    words = [w for w in text.split() if w not in ARTICLES] or text.split()
    return " ".join(NUMBER_WORDS.get(w, w) for w in words)


def choice_text(answer: str, choices: list[str]) -> str:
    """Rule 2: the choice a letter stands for; an answer that is not a letter is returned unchanged."""
    match = LETTER.match(answer)
    if match is not None:
        k = ord(match.group(1).lower()) - ord("a")
        if 0 <= k < len(choices):
            return choices[k]
    return answer


def score(answer: str | None, reference: str, choices: list[str] | None = None) -> bool:
    """True when `answer` is the reference answer under the rules above."""
    if answer is None or not answer.strip():
        return False
    if choices:
        answer, reference = choice_text(answer, choices), choice_text(reference, choices)
    return normalise(answer) == normalise(reference) != ""


def judge_score(generate, question: str, answer: str | None, reference: str,
                choices: list[str] | None = None) -> tuple[bool, str]:
    """Ask a judge (`generate(prompt) -> reply`, any local model) whether the answer matches.

    Returns (verdict, reply); the verdict is yes when the reply starts with "yes" after normalising.
    """
    if answer is None or not answer.strip():
        return False, ""
    if choices:
        answer, reference = choice_text(answer, choices), choice_text(reference, choices)
    reply = generate(JUDGE_PROMPT.format(question=question, reference=reference, answer=answer))
    return normalise(reply).startswith("yes"), reply
