"""The paper's benchmarks, evaluated the way its table was: Visual Probe, V* Bench, HR-Bench 4K / 8K, MME-RealWorld.

`benchmark_files.py` reads each benchmark's released files into records; this module adds what makes a number comparable
with Mini-o3's table (arXiv 2509.07969; the README of github.com/Mini-o3/Mini-o3):

- which files in a local copy are the test questions (`question_files`);
- the benchmark's own wording of a multiple-choice question (`Benchmark.prompt`): V* Bench's `text` field as
  released, HR-Bench's VLMEvalKit prompt (github.com/DreamMr/HR-Bench), MME-RealWorld's evaluation prompt
  (github.com/yfzhang114/MME-RealWorld, `evaluation/model_vqa_mme_real_world.py`); Visual Probe is open-ended and
  Mini-o3 asks its question as it stands;
- the groups each benchmark's authors report (`Benchmark.category`): Visual Probe by difficulty, V* by
  attribute / spatial question, HR-Bench by FSP / FCP (fine-grained single- / cross-instance perception),
  MME-RealWorld by perception / reasoning;
- a cached evaluation whose manifest holds the protocol (`ensure_benchmark_eval`), and Mini-o3's number
  beside the kit's (`paper_numbers`, read from `papers/paper_results.csv`).

`BENCHMARKS` is the one registry of the benchmarks the kit reads: a name (`eval --benchmark NAME`), its loader
and its files, prompt and groups.

Answers are scored against the option letter and the option text (`scoring.score`), or by a judge when one is
given, as the paper scores with GPT-4o (`evaluate.judged`).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import benchmark_files, data
from .benchmark_files import LETTERS
from .data import DataError, Record, RecordList
from .manifest import config_hash, portable, repo_root, stage_dir


def _hrbench_prompt(record: Record) -> str:
    """HR-Bench's VLMEvalKit prompt, to the byte: the question, lettered options, and the request to pick one."""
    options = "".join(f"{LETTERS[i]}. {c}\n" for i, c in enumerate(record.choices or []))
    ask = "Please select the correct answer from the options above. \n"
    return f"Question: {record.question}\nOptions:\n{options}{ask}"


def _mme_prompt(record: Record) -> str:
    """MME-RealWorld's evaluation prompt: the question, the options as released, the request for the letter."""
    options = "".join(f"({LETTERS[i]}) {c}\n" for i, c in enumerate(record.choices or []))
    return (f"{record.question} The choices are listed below: \n{options}"
            "Select the best answer to the above multiple-choice question based on the image. Respond with only the "
            "letter (A, B, C, D, or E) of the correct option.\nThe best answer is:")


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: where its test questions are in a local copy, how to read and ask them, how it is grouped."""

    name: str
    title: str  # its column in the paper's table (`papers/paper_results.csv`)
    files: tuple[str, ...]  # glob patterns of the test question files under `--data`, tried in order
    read: Callable[..., RecordList]  # read(question_file, on_error=..., cache_dir=...)
    prompt: Callable[[Record], str]  # the text asked after the image
    category: Callable[[Record], str]  # the group the benchmark's authors report


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("visual_probe", "VisualProbe", ("**/val.json", "**/val.jsonl", "**/val.parquet"),
              lambda f, on_error, cache_dir: benchmark_files.load_visual_probe(f, on_error=on_error),
              lambda r: r.question, lambda r: r.difficulty or "unknown"),
    Benchmark("vstar", "V* Bench", ("test_questions.jsonl",),
              lambda f, on_error, cache_dir: benchmark_files.load_vstar(f.parent, on_error=on_error),
              lambda r: r.meta.get("prompt") or r.question, lambda r: str(r.meta.get("category"))),
    Benchmark("hrbench4k", "HR-Bench 4K", ("hr_bench_4k.tsv", "hr_bench_4k.parquet"),
              lambda f, on_error, cache_dir: benchmark_files.load_hrbench(f, cache_dir=cache_dir, on_error=on_error),
              _hrbench_prompt, lambda r: {"single": "FSP", "cross": "FCP"}.get(r.meta.get("category"), "unknown")),
    Benchmark("hrbench8k", "HR-Bench 8K", ("hr_bench_8k.tsv", "hr_bench_8k.parquet"),
              lambda f, on_error, cache_dir: benchmark_files.load_hrbench(f, cache_dir=cache_dir, on_error=on_error),
              _hrbench_prompt, lambda r: {"single": "FSP", "cross": "FCP"}.get(r.meta.get("category"), "unknown")),
    Benchmark("mme_realworld", "MME-RealWorld", ("MME_RealWorld.json",),
              lambda f, on_error, cache_dir: benchmark_files.load_mme_realworld(f, on_error=on_error),
              _mme_prompt, lambda r: str(r.meta.get("task", "unknown"))),
)}


def get(name: str) -> Benchmark:
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]


def question_files(bench: Benchmark, path: str | Path) -> list[Path]:
    """The test question files of a local copy: `path` itself when it is a file, else the patterns under it."""
    path = Path(path).expanduser()
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(path, None, None, str(path), "no such file or folder", "Check --data.")
    for pattern in bench.files:
        found = sorted(path.glob(pattern))
        if found:
            return found
    raise DataError(path, None, None, str(path), f"no {' or '.join(bench.files)} here",
                    f"Point --data at a local copy of {bench.title} as released, or at its question file.")


def load(name: str, path: str | Path, cache_dir: str | Path | None = None, on_error: str = "raise") -> RecordList:
    """The benchmark's test questions as records (all its question files), with `.skipped` under on_error='skip'.

    `cache_dir`: where HR-Bench's base64 pictures are written once (default: beside the TSV).
    """
    bench = get(name)
    out = RecordList()
    for file in question_files(bench, path):
        part = bench.read(file, on_error=on_error, cache_dir=cache_dir)
        out.extend(part)
        out.skipped.extend(part.skipped)
    if not out:
        raise DataError(path, None, None, str(path), "no questions left to evaluate",
                        "Every entry was skipped: see the errors with on_error='raise'.")
    return out


def ensure_benchmark_eval(preset, model_dir, name: str, path: str | Path, run_name: str, n: int | None = None,
                          config=None, samples: int = 1, judge: Callable[[str], str] | None = None,
                          judge_name: str | None = None, on_error: str = "raise",
                          progress: bool = True) -> tuple[list[dict], dict]:
    """`runs/<preset>/eval/<run_name>/`: one evaluation of a benchmark (its first `n` questions), cached by protocol
    and by the questions themselves. Returns (rows, manifest); the manifest's metrics hold the summary per
    category, its inputs the entries skipped under on_error='skip'.

    Greedy unless `config` samples; then `samples` runs per question (Avg@K). `judge` scores the answers instead
    of the rules (`evaluate.judged`), named in the protocol as `judge_name`.
    """
    # deferred: evaluate imports torch, and the CLI imports this module (BENCHMARKS) before parsing --help
    from .evaluate import RULES, evaluated, evaluation_spec, settings

    bench = get(name)
    config = config or settings(preset)
    records = load(name, path, stage_dir(preset.name, "benchmarks") / name, on_error)
    chosen = records[:n]
    scorer = f"judge: {judge_name or 'local model'} (scoring.JUDGE_PROMPT)" if judge else RULES
    spec = evaluation_spec(preset, model_dir, config, "test", len(chosen), samples, scorer=scorer) | {
        "benchmark": name, "data": portable(Path(path).expanduser().resolve()), "prompt": "the benchmark's own wording"}
    inputs = {"questions": config_hash([r.to_json() for r in chosen]),
              "skipped": [s._asdict() for s in records.skipped]}  # in the manifest, and part of what is cached
    return evaluated(stage_dir(preset.name, "eval") / run_name, preset, model_dir, chosen, data.LazyImages(chosen),
                     config, spec, inputs, samples, progress, [bench.prompt(r) for r in chosen], bench.category, judge)


def paper_numbers(name: str, model: str = "Mini-o3") -> dict[str, float]:
    """Mini-o3's reported accuracy (%) per category of the benchmark (`all` for single-number benchmarks), from
    `papers/paper_results.csv`; empty when the kit's `papers/` folder is not there."""
    table = repo_root() / "papers" / "paper_results.csv"
    if not table.is_file():
        return {}
    bench = get(name)
    with open(table, encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["model"] == model and r["metric"] == "Avg@32"]
    found = {}
    for r in rows:
        if r["benchmark"] == bench.title:
            found["all"] = float(r["accuracy"])
        elif r["benchmark"].startswith(bench.title + " "):  # "VisualProbe hard": one column per category
            found[r["benchmark"].removeprefix(bench.title + " ")] = float(r["accuracy"])
    return found
