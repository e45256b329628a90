"""The evaluator: rows and summaries on scripted trajectories, the no-tool setting, a tiny-model run."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from mini_o3_lite import dataset, evaluate, protocol, scenes
from mini_o3_lite.presets import load_preset
from mini_o3_lite.rollout import RolloutConfig, replay_policy, rollout

P = load_preset("tiny")
CALL = protocol.assistant_text("I see a spot.", protocol.tool_call_text([0, 0, 0.5, 0.5], "original_image"))


def split(n=4):
    records, images = dataset.make_split(P.data, "test", P.min_pixels, P.max_pixels, n=n)
    return records, [images[r.id] for r in records]


def test_rows_and_summary_count_what_happened(tiny_processor):
    records, images = split(4)
    r = records
    script = {
        r[0].id: [CALL, protocol.assistant_text("I see it.", protocol.answer_text(r[0].answer))],  # right, 1 zoom
        r[1].id: ["<think>hm</think>\n<grounding>{bad json</grounding>",
                  protocol.assistant_text("I see it.", protocol.answer_text("nothing"))],  # wrong, 1 bad action
        r[2].id: [CALL, CALL, CALL],  # still searching at the turn limit: exceeded
        r[3].id: ["I have no idea"],  # neither call nor answer: invalid
    }
    cfg = RolloutConfig(max_turns=3, batch_size=4)
    rows = [evaluate.row(t, rec) for t, rec in zip(rollout(records, images, tiny_processor, replay_policy(script), cfg),
                                                   records, strict=True)]
    assert [x["correct"] for x in rows] == [True, False, False, False]
    assert [x["finish"] for x in rows] == ["answer", "answer", "max_turns", "invalid"]
    assert [x["zooms"] for x in rows] == [1, 0, 2, 0]  # the third call was not executed
    assert [(x["valid_actions"], x["actions"]) for x in rows] == [(2, 2), (1, 2), (3, 3), (0, 1)]
    total = evaluate.summary(rows)[0]
    assert total["difficulty"] == "all" and total["n"] == 4 and total["accuracy"] == 0.25
    assert total["valid_actions"] == round(6 / 8, 4) and total["exceeded"] == 0.25
    assert (total["finish_answer"], total["finish_max_turns"], total["finish_invalid"]) == (2, 1, 1)
    assert {s["difficulty"] for s in evaluate.summary(rows)} == {"all"} | {rec.difficulty for rec in records}


def test_no_tool_prompt_has_no_system_prompt_and_one_turn(tiny_processor):
    records, images = split(2)
    cfg = replace(RolloutConfig(batch_size=2), tools=False, max_turns=1, max_images=1)
    script = {records[0].id: [CALL], records[1].id: [protocol.assistant_text("x", protocol.answer_text("red"))]}
    trajs = rollout(records, images, tiny_processor, replay_policy(script), cfg)
    assert [m["role"] for m in trajs[0].messages] == ["user", "assistant"]
    assert protocol.SYSTEM_PROMPT[:40] not in tiny_processor.tokenizer.decode(trajs[0].input_ids)
    assert trajs[0].finish == "max_turns" and trajs[0].exceeded and trajs[1].finish == "answer"


def test_run_with_the_tiny_model(tiny_model, tiny_processor):
    records, images = split(3)
    trajs: list = []
    cfg = evaluate.settings(P, max_turns=2, max_new_tokens=8, batch_size=3)
    rows = evaluate.run(tiny_model, tiny_processor, records, images, cfg, trajectories=trajs)
    assert len(rows) == len(trajs) == 3 and all(1 <= x["turns"] <= 2 for x in rows)
    assert rows == evaluate.run(tiny_model, tiny_processor, records, images, cfg)  # greedy: same rows
    base = evaluate.no_tool(tiny_model, tiny_processor, records, images, cfg)
    assert all(x["turns"] == 1 for x in base)


def test_summary_without_difficulties_does_not_count_twice():
    rows = [{"difficulty": "unknown", "correct": c, "actions": 1, "valid_actions": 1, "turns": 1, "zooms": 0,
             "exceeded": False, "finish": "answer"} for c in (True, False)]
    groups = {s["difficulty"]: s for s in evaluate.summary(rows)}
    assert groups["all"]["n"] == 2 and groups["unknown"]["n"] == 2 and len(rows) == 2
    source = evaluate.summary([dict(r, source="vstar") for r in rows], by="source")
    assert [s["source"] for s in source] == ["all", "vstar"]


def test_budget_curve_equals_runs_at_each_budget(tiny_processor):
    records, images = split(4)
    r = records
    def answer(rec):
        return protocol.assistant_text("I see it.", protocol.answer_text(rec.answer))

    script = {r[0].id: [CALL, answer(r[0])], r[1].id: [CALL, CALL, CALL, answer(r[1])],
              r[2].id: [answer(r[2])], r[3].id: [CALL, protocol.assistant_text("x", protocol.answer_text("nothing"))]}
    rows = {b: [evaluate.row(t, rec) for t, rec in zip(
        rollout(records, images, tiny_processor, replay_policy(script), RolloutConfig(max_turns=b, batch_size=4)),
        records, strict=True)] for b in (1, 2, 4)}
    curve = evaluate.budget_curve(rows[4], [1, 2, 4], run_turns=4)  # right at turns 2, 4 and 1
    overall = {c["max_turns"]: c["accuracy"] for c in curve if c["difficulty"] == "all"}
    assert overall == {b: evaluate.accuracy(rows[b]) for b in (1, 2, 4)} == {1: 0.25, 2: 0.5, 4: 0.75}
    with pytest.raises(ValueError, match="larger than the run"):
        evaluate.budget_curve(rows[2], [4], run_turns=2)


def test_avg_at_k_mean_and_spread_and_same_seed_same_rows(tiny_model, tiny_processor):
    rows = [{"difficulty": d, "sample": i, "correct": c}
            for i, cs in enumerate([(1, 0), (1, 1), (0, 0)]) for d, c in zip(("easy", "hard"), cs, strict=True)]
    table = {s["difficulty"]: s for s in evaluate.avg_at_k(rows)}
    assert table["all"]["k"] == 3 and table["all"]["n"] == 2 and table["all"]["avg_accuracy"] == 0.5
    assert table["easy"]["avg_accuracy"] == round(2 / 3, 4) and (table["easy"]["min"], table["easy"]["max"]) == (0, 1)
    assert table["hard"]["avg_accuracy"] == 0.3333 and table["hard"]["std"] == 0.4714  # samples 0, 1, 0
    records, images = split(2)
    cfg = evaluate.settings(P, max_turns=2, max_new_tokens=8, batch_size=2, do_sample=True, temperature=1.0)
    first = evaluate.run_k(tiny_model, tiny_processor, records, images, cfg, k=2)
    assert [x["sample"] for x in first] == [0, 0, 1, 1]
    assert first == evaluate.run_k(tiny_model, tiny_processor, records, images, cfg, k=2)
    with pytest.raises(ValueError, match="sampling"):
        evaluate.run_k(tiny_model, tiny_processor, records, images, replace(cfg, do_sample=False), k=2)


def test_an_interrupted_avg_at_k_resumes_at_its_sample(tiny_model, tiny_processor, tmp_path, monkeypatch):
    records, images = split(2)
    cfg = evaluate.settings(P, max_turns=2, max_new_tokens=8, batch_size=2, do_sample=True, temperature=1.0)
    whole = evaluate.run_k(tiny_model, tiny_processor, records, images, cfg, k=3)
    real_run, seeds = evaluate.run, []

    def interrupted(model, processor, recs, ims, config, *args, **kwargs):
        seeds.append(config.seed)
        if config.seed == cfg.seed + 2 and len(seeds) == 3:
            raise KeyboardInterrupt  # stopped during the third sample
        return real_run(model, processor, recs, ims, config, *args, **kwargs)

    monkeypatch.setattr(evaluate, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        evaluate.run_k(tiny_model, tiny_processor, records, images, cfg, k=3, folder=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample-0.jsonl", "sample-1.jsonl"]
    resumed = evaluate.run_k(tiny_model, tiny_processor, records, images, cfg, k=3, folder=tmp_path)
    assert seeds[3:] == [cfg.seed + 2]  # only the unfinished sample ran again
    assert resumed == whole  # and the rows are those of one uninterrupted run


def test_diagnose_tells_perception_from_decision(tiny_processor):
    from mini_o3_lite import teacher

    records, images = split(3)
    script = {r.id: teacher.search_turns(scenes.scene_from_meta(r.meta, r.difficulty), P, False, False, True)
              for r in records}
    r0, r1, r2 = (r.id for r in records)
    last = script[r1][-1]
    script[r1] = script[r1][:-1] + [last.replace(f"<answer>{records[1].answer}</answer>", "<answer>nothing</answer>")]
    script[r2] = script[r2][:-1] + [last.replace("<think>I see ", "<think>I see nothing, ").replace(
        f"<answer>{records[1].answer}</answer>", "<answer>nothing</answer>")]
    trajs = rollout(records, images, tiny_processor, replay_policy(script), RolloutConfig(max_turns=16))
    right, decision, perception = (evaluate.diagnose(t, r, P) for t, r in zip(trajs, records, strict=True))
    assert right["kind"] == "right, last view described right" and right["described_right"] == right["turns"] >= 2
    assert decision["kind"] == "wrong, last view described right" and decision["described_right"] == decision["turns"]
    assert perception["kind"] == "wrong, last view described wrong"
    assert perception["described_right"] == perception["turns"] - 1 and right["repeats"] == 0
    cut = rollout(records[:1], images[:1], tiny_processor, replay_policy(script), RolloutConfig(max_turns=2))[0]
    assert evaluate.diagnose(cut, records[0], P)["kind"] == "out of turns"
    assert all(d["followed"] == d["moves"] for d in (right, decision, perception)) and right["moves"] >= 1


def test_diagnose_counts_moves_that_leave_the_search_order(tiny_processor):
    """A search that zooms the same tile again after "next tile" breaks the depth-first order once."""
    from mini_o3_lite import teacher

    records, images = split(8)
    turns = {r.id: teacher.search_turns(scenes.scene_from_meta(r.meta, r.difficulty), P, False, False, True)
             for r in records}
    rid = next(i for i, ts in turns.items() if sum("next tile" in t for t in ts) >= 1)
    record = next(r for r in records if r.id == rid)
    k = next(i for i, t in enumerate(turns[rid]) if "next tile" in t)
    box = turns[rid][k - 1].split("<grounding>")[1]
    # turn k zooms the previous tile again; the original turn k comes after it, cut by the turn limit
    looped = turns[rid][:k] + [turns[rid][k].split("<grounding>")[0] + "<grounding>" + box, turns[rid][k]]
    trajs = rollout([record], [images[records.index(record)]], tiny_processor, replay_policy({rid: looped}),
                    RolloutConfig(max_turns=len(looped)))
    d = evaluate.diagnose(trajs[0], record, P)
    assert (d["moves"], d["followed"], d["repeats"]) == (k, k - 1, 1)
    assert d["move_log"] == [(turn, turn != k + 1) for turn in range(2, k + 2)]  # turn k + 1 is the loop


def test_next_tile_walks_the_quadrant_hierarchy():
    full = (0, 0, 1024, 1024)
    assert scenes.next_tile(full, (0, 0, 512, 512)) == (512, 0, 1024, 512)
    assert scenes.next_tile(full, (256, 256, 512, 512)) == (512, 0, 1024, 512)  # last of its four: parent's next
    assert scenes.next_tile(full, (896, 896, 1024, 1024)) is None  # the very last tile
    assert scenes.next_tile(full, (100, 0, 612, 512)) is None  # not a tile of the hierarchy


class _Scripted:
    """A stand-in model whose top choice for each next token is the true one, except where `wrong` says."""

    device = torch.device("cpu")

    def __init__(self, vocab: int, wrong=lambda nxt: None):
        self.vocab, self.wrong = vocab, wrong

    def __call__(self, input_ids, **_):
        ids = input_ids[0].tolist()
        choice = [self.wrong(n) if self.wrong(n) is not None else n for n in ids[1:]] + [0]
        return SimpleNamespace(logits=torch.nn.functional.one_hot(torch.tensor([choice]), self.vocab).float())


def test_teacher_forced_reads_each_part_of_a_turn_alone(tiny_processor):
    from mini_o3_lite import teacher

    records, images = split(6)
    script = {r.id: teacher.search_turns(scenes.scene_from_meta(r.meta, r.difficulty), P, False, False, True)
              for r in records}
    trajs = rollout(records, images, tiny_processor, replay_policy(script), RolloutConfig(max_turns=16))
    tok, words = tiny_processor.tokenizer, (P.data.colours, P.data.shapes)
    perfect = evaluate.teacher_forced(_Scripted(len(tok)), tiny_processor, trajs, *words)
    assert len(perfect) == sum(len(s) for s in script.values())
    assert all(r["description"] and r["verdict_first"] and r["verdict"] and r["action"] for r in perfect)
    assert perfect[0]["kind"] == "Search the tiles for the C S." and perfect[0]["turn"] == 1
    the, no = tok.convert_tokens_to_ids("The"), tok.convert_tokens_to_ids("No")
    habit = evaluate.teacher_forced(_Scripted(len(tok), lambda n: no if n == the else None), tiny_processor, trajs,
                                    *words)  # says "No" wherever the teacher says "The"
    for row in habit:
        starts_the = row["kind"].startswith("The ")
        assert row["verdict_first"] == row["verdict"] == (not starts_the) and row["description"] and row["action"]
    assert any(r["kind"].startswith("The ") for r in habit)  # every search ends on "The <target> has ..."
    assert evaluate.verdict_kind("An orange spot: zoom in.", ("orange",), ("square",)) == "A C spot: zoom in."
    hinted = "No red here: next tile [0.5, 0.0, 1.0, 0.5]."  # a tile hint's box groups as [..]
    assert evaluate.verdict_kind(hinted, ("red",), ()) == "No C here: next tile [..]."
