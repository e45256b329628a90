"""The kit speaks of the kit: no build history and no references to files outside the repository.

Every text file of the repository (tracked, or new and not ignored) is read: docs, notebooks (markdown and
code cells, not outputs, which runs regenerate), docstrings, comments, model cards, scripts. A file fails on

- words that tell how the kit was built rather than what it is: a numbered or "this / that" work session,
  a numbered issue of the work tracker, the nickname of an earlier base, a checkpoint kept "until" it is
  retrained, the commit a text is written in, the CI machine of the repository (the patterns below);
- references to files that are not in the repository: the two design notes that lived outside it, paths
  into a sibling shared folder, kit files (``papers/...``, ``notebooks/...``, ``mini_o3_lite/...`` and the
  other top-level folders, written with their extension) that do not exist, and, in markdown (outside
  code), relative links whose target does not exist.

What was tried, with its numbers, belongs in ``papers/experiments.md`` (written without these words); the
design reasoning in ``papers/design.md``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Words of the kit's history. Written (\s+, \b) so that this file's own source does not match them.
HISTORY = [
    ("session", re.compile(r"\bsessions?\s+\d+", re.I)),
    ("session", re.compile(r"\bth(?:is|at|e\s+next|e\s+previous)\s+session\b", re.I)),
    ("issue", re.compile(r"\bissues?\s+#?\d+", re.I)),
    ("first_base", re.compile(r"\bfirst\s+base\b", re.I)),
    ("until_retrained", re.compile(r"\buntil\s+retrained\b", re.I)),
    ("this_commit", re.compile(r"\bthis\s+commit\b", re.I)),
    ("ci_machine", re.compile(r"\bCI\s+machine\s+of\s+this\s+repo", re.I)),
]
# Files that were never part of the repository.
OUTSIDE = [
    ("design_note", re.compile(r"\bDESIGN\.md\b")),
    ("facts_note", re.compile(r"\bMINI_O3_FACTS(?:\.md)?\b")),
    ("shared_folder", re.compile(r"\.\./shared\b")),
]
# Files of the kit, written from the repository root with their extension, that must exist (folders are
# left out: commands name the folders they will create).
KIT_PATH = re.compile(
    r"(?<![\w./<>-])((?:papers|notebooks|benchmarks|tests|data_samples|mini_o3_lite|checkpoints)/[\w./-]*"
    r"\.(?:md|ipynb|py|csv|tsv|sh|json|jsonl|txt|toml|ya?ml|jinja|safetensors|png))\b"
)
FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
# Markdown links and images: [text](target) or [text](<target>), with an optional title.
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")

SKIP_SUFFIXES = {
    ".safetensors", ".bin", ".pt", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".pdf",
    ".json", ".jsonl", ".parquet", ".npz", ".npy", ".gz", ".zip", ".tar", ".ico",
}
SKIP_NAMES = {"LICENSE"}


def repo_files() -> list[str]:
    """Tracked files plus new ones that git does not ignore, relative to the root (skips without git)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return sorted({p for p in out.decode().split("\0") if p and (ROOT / p).is_file()})


def existing(files: list[str]) -> set[str]:
    """Every file of the repository and every folder above one."""
    known = set(files)
    for f in files:
        parts = f.split("/")
        known.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return known


def is_text(path: str) -> bool:
    p = Path(path)
    if p.name in SKIP_NAMES:
        return False
    if p.suffix == ".ipynb":
        return True
    if p.suffix.lower() in SKIP_SUFFIXES:
        return False
    head = (ROOT / path).read_bytes()[:8192]
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def texts(path: str) -> list[tuple[str, str, bool]]:
    """(where, text, is_markdown) pieces of a file: a notebook's cell sources, or the whole file."""
    if path.endswith(".ipynb"):
        nb = json.loads((ROOT / path).read_text(encoding="utf-8"))
        return [
            (f"cell {i} ({c['cell_type']})", "".join(c.get("source", [])), c["cell_type"] == "markdown")
            for i, c in enumerate(nb["cells"])
        ]
    return [("", (ROOT / path).read_text(encoding="utf-8", errors="replace"), path.endswith(".md"))]


def find_words(text: str) -> list[tuple[int, str, str]]:
    """(line, pattern, matched text) for every history word or outside file in `text`."""
    found = []
    for n, line in enumerate(text.splitlines(), 1):
        for name, pattern in HISTORY + OUTSIDE:
            found.extend((n, name, m.group(0)) for m in pattern.finditer(line))
    return found


def find_dangling(text: str, folder: str, known: set[str], markdown: bool) -> list[tuple[int, str, str]]:
    """(line, kind, target) for kit paths, and in markdown relative links, that are not in the repository."""
    found = []
    fenced = False
    for n, line in enumerate(text.splitlines(), 1):
        for m in KIT_PATH.finditer(line):
            if m.group(1) not in known:
                found.append((n, "missing path", m.group(1)))
        if not markdown:
            continue
        if FENCE.match(line):
            fenced = not fenced
        if fenced or FENCE.match(line):
            continue
        for m in LINK.finditer(CODE_SPAN.sub("", line)):
            target = m.group(1).split("#", 1)[0]
            if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                continue  # an anchor in the same page, a URL, mailto:, attachment:
            base = "" if target.startswith("/") else folder  # "/x" is x from the repository root
            resolved = os.path.normpath(os.path.join(base, target.lstrip("/")))
            if resolved.startswith("..") or resolved not in known:
                found.append((n, "dangling link", target))
    return found


def problems(files: list[str]) -> list[str]:
    known = existing(files)
    out = []
    for path in files:
        if not is_text(path):
            continue
        folder = os.path.dirname(path)
        for where, text, markdown in texts(path):
            label = f"{path} {where}".strip()
            out.extend(f"{label}:{n}: {name} {word!r}" for n, name, word in find_words(text))
            out.extend(f"{label}:{n}: {kind} {t!r}" for n, kind, t in find_dangling(text, folder, known, markdown))
    return out


def test_repository_speaks_of_the_kit():
    found = problems(repo_files())
    if found:
        pytest.fail(f"{len(found)} history words or references outside the repository:\n" + "\n".join(found))


def test_notebook_outputs_are_reported():
    """Outputs are rewritten by the next run, not by hand: words found there are reported, not failed."""
    found = []
    for path in repo_files():
        if not path.endswith(".ipynb"):
            continue
        for i, cell in enumerate(json.loads((ROOT / path).read_text(encoding="utf-8"))["cells"]):
            for output in cell.get("outputs", []):
                text = "".join(output.get("text", [])) + json.dumps(output.get("data", {}))
                found.extend(f"{path} cell {i} output: {name} {word!r}" for _, name, word in find_words(text))
    if found:
        warnings.warn("history words in notebook outputs (rerun the notebook):\n" + "\n".join(found), stacklevel=1)


# The checker itself: each pattern is found in a small text, and a clean text passes. The forbidden words
# are split across string literals so that this file stays clean.
DIRTY = [
    ("as measured in sess" "ion 19", "session"),
    ("the runs of Sess" "ions 20-31", "session"),
    ("Earlier in this sess" "ion we", "session"),
    ("done in that sess" "ion", "session"),
    ("left for the next sess" "ion", "session"),
    ("see iss" "ue #5", "issue"),
    ("tracked as iss" "ue 12", "issue"),
    ("the fir" "st base's agent", "first_base"),
    ("shipped unt" "il retrained", "until_retrained"),
    ("measured at th" "is commit", "this_commit"),
    ("on the CI mach" "ine of this repository", "ci_machine"),
    ("see DES" "IGN.md section 6", "design_note"),
    ("the worked examples of MINI_O3_FA" "CTS.md", "facts_note"),
    ("run `../sha" "red/probes/learnability.py`", "shared_folder"),
]


@pytest.mark.parametrize(("text", "name"), DIRTY)
def test_each_forbidden_word_is_found(text, name):
    found = find_words("A clean first line.\n" + text + "\n")
    assert [(n, nm) for n, nm, _ in found] == [(2, name)]


def test_dangling_references_are_found():
    known = existing(["papers/numbers.md", "notebooks/05_rl_over_turn_masking.ipynb", "README.md"])
    text = (
        "See [the numbers](../papers/numbers.md#rl) and [gone](../papers/" "nowhere.md).\n"
        "![a picture](figures/" "missing.png) and `papers/" "missing.md`.\n"
        "[outside](../../" "elsewhere/notes.md)\n"
        "In code a regex `.*[a](.*)` and\n```\nx = y[i](z)\n```\nare no links.\n"
    )
    found = find_dangling(text, "notebooks", known, markdown=True)
    assert [(n, kind) for n, kind, _ in found] == [
        (1, "dangling link"), (2, "missing path"), (2, "dangling link"), (3, "dangling link"),
    ]
    # Outside markdown only kit paths count: a bracket followed by a parenthesis is code there.
    assert [kind for _, kind, _ in find_dangling(text, "notebooks", known, markdown=False)] == ["missing path"]


def test_clean_text_passes():
    known = existing(["papers/numbers.md", "papers/design.md", "README.md", "mini_o3_lite/assets/tiny-base/README.md"])
    text = (
        "# The kit\n"
        "Start a Python session, or restart the Jupyter kernel session, and read [design](design.md),\n"
        "[the README](../README.md#setup), [the paper](https://arxiv.org/abs/2509.07969) and [a section](#top).\n"
        "The base `mini_o3_lite/assets/tiny-base` and `papers/numbers.md`; pytest's scope=\"session\" fixtures.\n"
        "The first zoom, the base model, a retrained agent, each commit's manifest, the issue of memory.\n"
    )
    assert find_words(text) == []
    assert find_dangling(text, "papers", known, markdown=True) == []
