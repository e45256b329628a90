"""Evaluation: run the agent on a split, score every answer, summarise as a tidy table.

One evaluator for every split and benchmark loader (anything with `data.Record` fields). A run is
the agent loop of `rollout.py` with greedy decoding by default; every trajectory becomes one row
(id, difficulty, answer, correct, turns, zooms, finish, exceeded, valid actions, tokens), and
`summary` groups rows into accuracy, valid-action rate, mean turns and finish reasons per
difficulty. The no-tool baseline is the same model asked the same question without the system
prompt that describes the tool, with one turn to answer from the full view alone.

Two ways to read a model: greedy (one run, deterministic) and Avg@K (Mini-o3's Avg@32: K sampled
runs per question at temperature 1.0, mean accuracy, here with its spread over the K runs).
Turn-budget curves come from one run at the largest budget (`budget_curve`).

`teacher_forced` reads a model on the scripted teacher's own searches instead: every turn starts
from the teacher's exact conversation so far, so seeing, deciding and zooming are measured apart.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, replace
from itertools import accumulate
from pathlib import Path

import torch

from . import description, protocol, scenes, scoring
from .data import LazyImages, read_records
from .dataset import ensure_dataset
from .manifest import cached_stage, config_hash, portable, stage_dir
from .modeling import ASSETS, load_for
from .rollout import Batcher, RolloutConfig, model_policy, rollout


def settings(preset, max_turns: int | None = None, **overrides) -> RolloutConfig:
    """Greedy evaluation settings from a preset (turn budget: the preset's test-time budget)."""
    return RolloutConfig.for_preset(preset, max_turns or preset.max_turns_eval, **({"do_sample": False} | overrides))


def row(traj, record) -> dict:
    """One trajectory as a flat row (pandas-friendly)."""
    actions = len(traj.calls)
    valid = sum(c is None or bool(c.get("valid")) for c in traj.calls)
    zooms = sum(1 for c in traj.calls if c and c.get("valid") and c.get("executed", True))
    return {
        "id": traj.id, "difficulty": record.difficulty or "unknown", "source": record.source,
        "answer_key": record.answer, "answer": traj.answer,
        "correct": scoring.score(traj.answer, record.answer, record.choices),
        "turns": traj.turns, "zooms": zooms, "finish": traj.finish, "exceeded": traj.exceeded,
        "actions": actions, "valid_actions": valid, "tokens": len(traj.input_ids),
    }


def run(model, processor, records, images, config: RolloutConfig | None = None, progress: bool = False,
        trajectories: list | None = None, log: list | None = None, prompts: list[str] | None = None) -> list[dict]:
    """Evaluate the model on the records; returns one row per record.

    `images[i]` is record i's image (`data.open_image(record, folder)`). Pass a list as `trajectories`
    to keep the trajectories as well, and one as `log` for the loop's memory per turn (`rollout`).
    `prompts[i]`, when given, is the whole text asked after record i's image, options included (a benchmark's
    own wording); by default the question with the kit's lettered options. Answers are scored against the
    record's choices either way.
    """
    config = config or RolloutConfig(do_sample=False)
    asked = records if prompts is None else [
        replace(r, question=p, choices=None) for r, p in zip(records, prompts, strict=True)]
    trajs = rollout(asked, images, processor, model_policy(model, config), config, progress=progress, log=log)
    if trajectories is not None:
        trajectories += trajs
    return [row(t, r) for t, r in zip(trajs, records, strict=True)]


def grouped(rows: list[dict], by: str) -> dict[str, list[dict]]:
    """`all` rows, then the rows of each value of `by` (a value named "all" becomes "<by>=all")."""
    groups: dict[str, list[dict]] = {"all": list(rows)}
    for r in rows:
        groups.setdefault(f"{by}={r[by]}" if str(r[by]) == "all" else str(r[by]), []).append(r)
    return groups


def run_k(model, processor, records, images, config: RolloutConfig, k: int, progress: bool = False,
          log: list | None = None, prompts: list[str] | None = None, folder: Path | None = None) -> list[dict]:
    """K sampled runs (seeds `config.seed + i`); each row carries its `sample` index i. Same seed, same rows.

    With a `folder`, each finished sample's rows are kept there (`sample-<i>.jsonl`) and read back by a later
    call: an interrupted Avg@K resumes at the sample it was in (one sample of hundreds of questions is minutes).
    """
    if not config.do_sample:
        raise ValueError("run_k needs a sampling config (do_sample=True); greedy runs are all the same")
    out = []
    for i in range(k):
        shard = Path(folder) / f"sample-{i}.jsonl" if folder is not None else None
        if shard is not None and shard.is_file():
            out += [json.loads(line) for line in shard.read_text().splitlines()]
            continue
        rows = [dict(r, sample=i) for r in run(model, processor, records, images, replace(config, seed=config.seed + i),
                                                progress, log=log, prompts=prompts)]
        if shard is not None:  # written whole, then renamed: an interrupt never leaves half a sample to resume from
            partial = shard.with_suffix(".partial")
            partial.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
            partial.replace(shard)
        out += rows
    return out


def avg_at_k(rows: list[dict], by: str = "difficulty") -> list[dict]:
    """Avg@K per group: mean over the K samples of each sample's accuracy, with std, min and max over samples."""
    groups = grouped(rows, by)
    out = []
    for name, rs in groups.items():
        per_sample = [accuracy([r for r in rs if r["sample"] == i]) for i in sorted({r["sample"] for r in rs})]
        out.append({by: name, "n": len(rs) // len(per_sample), "k": len(per_sample),
                    "avg_accuracy": round(statistics.fmean(per_sample), 4),
                    "std": round(statistics.pstdev(per_sample), 4),
                    "min": min(per_sample), "max": max(per_sample)})
    order = {"all": 0, "easy": 1, "medium": 2, "hard": 3}
    return sorted(out, key=lambda s: (order.get(s[by], 9), s[by]))


def budget_curve(rows: list[dict], budgets, run_turns: int, by: str = "difficulty") -> list[dict]:
    """Accuracy at each turn budget, read off one run made with budget `run_turns`.

    Exact for greedy decoding: the prompt never states the budget, so the first b turns of a run
    with budget `run_turns` are the run with budget b, and a question counts as right at budget b
    when it was answered correctly within b turns (a trajectory still searching at turn b is
    `exceeded` there, which scores 0). One long run instead of one run per budget.
    """
    if max(budgets) > run_turns:
        raise ValueError(f"budget {max(budgets)} is larger than the run's {run_turns} turns")
    groups = grouped(rows, by)
    return [{by: name, "max_turns": b, "n": len(rs),
             "accuracy": round(sum(r["correct"] and r["turns"] <= b for r in rs) / max(len(rs), 1), 4),
             "answered": round(sum(r["finish"] == "answer" and r["turns"] <= b for r in rs) / max(len(rs), 1), 4)}
            for name, rs in groups.items() for b in budgets]


def no_tool(model, processor, records, images, config: RolloutConfig | None = None,
            progress: bool = False) -> list[dict]:
    """The no-tool baseline: no tool in the prompt, one turn, the full view only."""
    config = replace(config or RolloutConfig(do_sample=False), tools=False, max_turns=1, max_images=1)
    return run(model, processor, records, images, config, progress)


def verdict_kind(verdict: str, colours, shapes) -> str:
    """A verdict's wording with its colours and shapes replaced by C and S, and a tile hint's box by [..]
    ("No C here: next tile [..]."), so that verdicts of one kind group together."""
    for words, letter in ((shapes, "S"), (colours, "C")):
        if words:
            verdict = re.sub(rf"\b(?:{'|'.join(map(re.escape, words))})\b", letter, verdict)
    return re.sub(r"\b([Aa])n C\b", r"\1 C", re.sub(r"\[[^\]]*\]", "[..]", verdict))


@torch.no_grad()
def teacher_forced(model, processor, trajectories, colours, shapes) -> list[dict]:
    """Each model turn of scripted trajectories, read under teacher forcing: one row per turn.

    A turn is `<think>{description}. {verdict}</think>` then its call or answer. For each part the row
    says whether every token is the model's top choice given the exact conversation before it (the
    teacher's), and `verdict_first` whether the verdict's first word is. Free-running evaluation
    mixes the skills (one wrong word and the search goes elsewhere); here each is measured alone, on
    searches whose every turn is right by construction. Written by hand: transformers scores a
    whole sequence, not the parts of a thought.
    """
    rows = []
    for traj in trajectories:
        inputs = {k: v.to(model.device) for k, v in Batcher(processor).batch([traj]).items()}
        top = model(**inputs).logits[0, :-1].argmax(-1).tolist()  # top[i]: the choice for token i + 1
        ids, mask = traj.input_ids, traj.model_mask
        starts = [i for i in range(1, len(ids)) if mask[i] and not mask[i - 1]]
        for turn, start in enumerate(starts, start=1):
            end = next((i for i in range(start, len(ids)) if not mask[i]), len(ids))
            pieces = [processor.tokenizer.decode([t]) for t in ids[start:end]]
            at = list(accumulate(map(len, pieces[:-1]), initial=0))  # each token's first character
            hit = [top[i - 1] == ids[i] for i in range(start, end)]
            text = "".join(pieces)
            think_end, parts = text.find("</think>"), description.split(text)
            if parts is None or not parts[1]:
                continue  # not a teacher turn
            verdict_at = text.index(parts[0]) + len(parts[0]) + 2  # after the description's ". "
            parts = {"description": (0, verdict_at), "verdict_first": (verdict_at, verdict_at + 1),
                     "verdict": (verdict_at, think_end), "action": (think_end, len(text))}
            rows.append({"id": traj.id, "turn": turn, "kind": verdict_kind(text[verdict_at:think_end], colours, shapes)}
                        | {part: all(h for h, a in zip(hit, at, strict=True) if lo <= a < hi)
                           for part, (lo, hi) in parts.items()})
    return rows


def summary(rows: list[dict], by: str = "difficulty") -> list[dict]:
    """Per group (and `all`): n, accuracy, valid-action rate, mean turns and zooms, exceeded, finishes."""
    groups = grouped(rows, by)
    out = []
    for name, rs in groups.items():
        n = len(rs)
        actions = sum(r["actions"] for r in rs)
        finishes = Counter(r["finish"] for r in rs)
        out.append({
            by: name, "n": n,
            "accuracy": round(sum(r["correct"] for r in rs) / max(n, 1), 4),
            "valid_actions": round(sum(r["valid_actions"] for r in rs) / max(actions, 1), 4),
            "mean_turns": round(sum(r["turns"] for r in rs) / max(n, 1), 2),
            "mean_zooms": round(sum(r["zooms"] for r in rs) / max(n, 1), 2),
            "exceeded": round(sum(r["exceeded"] for r in rs) / max(n, 1), 4),
            **{f"finish_{k}": finishes.get(k, 0) for k in ("answer", "max_turns", "context", "invalid")},
        })
    order = {"all": 0, "easy": 1, "medium": 2, "hard": 3}
    return sorted(out, key=lambda s: (order.get(s[by], 9), s[by]))


def accuracy(rows: list[dict]) -> float:
    return round(sum(r["correct"] for r in rows) / max(len(rows), 1), 4)


def model_hash(model_dir) -> str:
    """A short fingerprint of a checkpoint's weights: their bytes when small (tiny), else names, sizes, times."""
    files = sorted(Path(model_dir).glob("*.safetensors"))
    digest = hashlib.sha256()
    small = sum(f.stat().st_size for f in files) < 200 * 2**20
    for f in files:
        digest.update(f.read_bytes() if small else f"{f.name}/{f.stat().st_size}/{f.stat().st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


RULES = "rule-based (scoring.py)"


def evaluation_spec(preset, model_dir, config: RolloutConfig, split: str, n: int, samples: int = 1,
                    pixels: tuple[int, int] | None = None, scorer: str = RULES) -> dict:
    """Everything that decides an evaluation's numbers (written into its manifest as its `protocol`, printed
    under tables): model, data, turn budget, pixel budget, decoding, seed, scorer and the prompts' hash."""
    lo, hi = pixels or (preset.min_pixels, preset.max_pixels)
    return {
        "model": portable(model_dir), "model_hash": model_hash(model_dir), "preset": preset.name, "split": split,
        "n": n,
        "max_turns": config.max_turns, "min_pixels": lo, "max_pixels": hi,
        "tools": config.tools, "decoding": "greedy" if not config.do_sample else f"T={config.temperature}",
        **({"samples": samples} if config.do_sample else {}),  # Avg@K's K
        **({"tile_hints": True} if config.hints else {}),  # kit-only observation text (hints.py)
        "seed": config.seed, "scorer": scorer,
        "prompt_hash": config_hash([protocol.SYSTEM_PROMPT, protocol.observation_text(1)]),
    }


SHIPPED_EVALS = ASSETS / "evals"  # finished evaluations the notebooks read instead of computing (`ship`)


def ensure_eval(preset, model_dir, name: str, split: str = "test", n: int | None = None,
                config: RolloutConfig | None = None, progress: bool = True,
                samples: int = 1, pixels: tuple[int, int] | None = None,
                shipped: bool = False) -> tuple[list[dict], dict]:
    """`runs/<preset>/eval/<name>/`: rows of one evaluation, computed once per protocol. Returns (rows, manifest).

    With a sampling `config`, `samples` runs per question (Avg@K; rows carry `sample`), else one greedy run.
    `pixels` = (min, max) evaluates at another pixel budget on the preset's own scenes (the max-pixels sweep).
    `shipped`: take the kit's copy of this evaluation (`SHIPPED_EVALS/<preset>/<name>`) when its protocol,
    model and data hash to the same config; anything else is computed.
    """
    config = config or settings(preset)
    data_dir, data = ensure_dataset(preset, split, n)  # the split's first n scenes: only those are made
    records = read_records(data_dir / f"{split}.jsonl")[:n]
    spec = evaluation_spec(preset, model_dir, config, split, len(records), samples, pixels)
    return evaluated(stage_dir(preset.name, "eval") / name, preset, model_dir, records, LazyImages(records, data_dir),
                     config, spec, {"data": data["config_hash"]}, samples, progress,
                     shipped=SHIPPED_EVALS / preset.name / name if shipped else None)


def ship(preset_name: str, names: list[str]) -> list[Path]:
    """Copy finished evaluations `runs/<preset>/eval/<name>/` (manifest and rows) to `SHIPPED_EVALS`.

    The notebooks' heaviest cells read these copies under `make test`; their parameter `shipped_results =
    False` computes the same rows again. Returns the folders written.
    """
    written = []
    for name in names:
        source, target = stage_dir(preset_name, "eval") / name, SHIPPED_EVALS / preset_name / name
        if not (source / "manifest.json").is_file():
            raise FileNotFoundError(f"{source}: no finished evaluation (manifest.json) to ship")
        target.mkdir(parents=True, exist_ok=True)
        for file in ("manifest.json", "rows.jsonl", "memory.json"):
            (target / file).write_bytes((source / file).read_bytes())
        written.append(target)
    return written


def evaluated(folder, preset, model_dir, records, images, config: RolloutConfig, spec: dict, inputs: dict,
              samples: int = 1, progress: bool = True, prompts: list[str] | None = None,
              category: Callable | None = None, judge: Callable[[str], str] | None = None,
              shipped: Path | None = None) -> tuple[list[dict], dict]:
    """`folder` holds the rows of one evaluation of `records`, computed once per protocol `spec` and `inputs`.

    The model is opened at the protocol's pixel budget. `prompts`: each question as asked (`run`);
    `category(record)`: the group a benchmark reports (rows get a `category` column and are summarised by it,
    else by difficulty); `judge`: scores the answers instead of the rules (`judged`); `shipped`: a finished
    copy to take when it matches (`manifest.cached_stage`). Returns (rows, manifest).
    """
    by = "difficulty" if category is None else "category"

    def build(out):
        model, processor = load_for(preset, model_dir, min_pixels=spec["min_pixels"], max_pixels=spec["max_pixels"])
        log: list[dict] = []  # memory per batched turn
        rows = run_k(model, processor, records, images, config, samples, progress, log, prompts, folder=out) \
            if config.do_sample else run(model, processor, records, images, config, progress, log=log, prompts=prompts)
        if category is not None:
            groups = {r.id: category(r) for r in records}
            rows = [dict(r, category=groups[r["id"]]) for r in rows]
        if judge is not None:
            rows = judged(rows, records, judge)
        (out / "rows.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        (out / "memory.json").write_text(json.dumps(log))
        for shard in out.glob("sample-*.jsonl"):  # run_k's resume points, now in rows.jsonl
            shard.unlink()
        return {"summary": avg_at_k(rows, by) if config.do_sample else summary(rows, by),
                "peak_rss_mb": max((e["peak_rss_mb"] for e in log), default=None)}

    manifest = cached_stage(folder, {"protocol": spec, "rollout": asdict(config)}, build, inputs, config.seed, shipped)
    rows = [json.loads(line) for line in (folder / "rows.jsonl").read_text().splitlines()]
    return rows, manifest


def judged(rows: list[dict], records, judge: Callable[[str], str]) -> list[dict]:
    """Rows scored by a judge (`scoring.judge_score`, `judge(prompt) -> reply`) instead of the rules, as Mini-o3
    scores with GPT-4o; the rules' verdict stays beside it as `rule_correct`, the judge's words as `judge_reply`."""
    by_id = {r.id: r for r in records}
    out = []
    for r in rows:
        record = by_id[r["id"]]
        verdict, reply = scoring.judge_score(judge, record.question, r["answer"], record.answer, record.choices)
        out.append(dict(r, correct=verdict, rule_correct=r["correct"], judge_reply=reply))
    return out


def local_judge(model, processor, max_new_tokens: int = 8) -> Callable[[str], str]:
    """A local checkpoint as the judge: the prompt as one user turn, a short greedy reply (no image)."""

    @torch.no_grad()
    def generate(prompt: str) -> str:
        messages = [{"role": "user", "content": [{"type": "text", "text": prompt}]}]
        text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = processor.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"].to(model.device)
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=False)
        return processor.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)

    return generate


_MOVE_RE = re.compile(r"(zoom in|next tile)(?: \[[^\]]*\])?\.$")


def diagnose(traj, record, preset) -> dict:
    """Why a search on a generated scene ended as it did: perception (its words for a view) or decision.

    Every turn starts with the agent's description of the latest view ("I see ..."); the scripted
    teacher's description of the same region (`description.of_view`, the ground truth a perfect
    perceiver would say) tells whether the agent saw right. A wrong answer after a right description
    of the last view is a decision error; after a wrong one, a perception error. `repeats` counts
    zooms into the same box as the zoom just before (a search that loops; the teacher's re-check of
    the target is one too). `moves` counts zooms after "zoom in" or "next tile" and `followed` those
    that go where the teacher's depth-first search would: the first quadrant of the view, or the
    next tile (`scenes.next_tile`: the next sibling, else the parent's next); `move_log` says, for each
    such zoom, which turn made it (2 = the second; the n-th zoom unless an earlier turn was invalid)
    and whether it followed.
    """
    scene = scenes.scene_from_meta(record.meta, record.difficulty)
    views = [scenes.full_region(scene)]
    current, right, last, move_log = views[0], [], None, []
    assistant = (m for m in traj.messages if m["role"] == "assistant")
    for turn, (message, call) in enumerate(zip(assistant, traj.calls, strict=False), start=1):
        said = description.read(message["content"][0]["text"])
        last = said is not None and f"{said}." == description.of_view(scene, current, preset)[0]
        text = protocol.extract_think(message["content"][0]["text"]) or ""
        right.append(last)
        if call and call.get("valid") and "size" in call:  # an executed zoom: the next turn describes its view
            move = _MOVE_RE.search(text)  # "... zoom in." (or "zoom in [box]." with tile hints)
            deeper = bool(move) and move.group(1) == "zoom in"
            expected = (scenes.sub_region(current, scenes.TILE_BOXES[0]) if deeper
                        else scenes.next_tile(views[0], current))
            current = scenes.sub_region(views[protocol.source_index(call["source"])], tuple(call["bbox"]))
            views.append(current)
            if move:
                move_log.append((turn, current == expected))
    if traj.finish == "answer":
        verdict = "right" if scoring.score(traj.answer, record.answer, record.choices) else "wrong"
        kind = f"{verdict}, last view described {'right' if last else 'wrong'}"
    else:
        kind = {"max_turns": "out of turns", "context": "out of context"}.get(traj.finish, str(traj.finish))
    boxes = [c.get("bbox") if c else None for c in traj.calls]
    repeats = sum(1 for a, b in zip(boxes, boxes[1:], strict=False) if a is not None and a == b)
    return {"id": traj.id, "kind": kind, "described_right": sum(right), "turns": len(right), "repeats": repeats,
            "moves": len(move_log), "followed": sum(f for _, f in move_log), "move_log": move_log}
