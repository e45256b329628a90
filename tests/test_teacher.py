"""The scripted teacher: every kept trajectory is correct by construction, deterministic, and round-trips."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from mini_o3_lite import dataset, fewshot, modeling, rollout, scenes, teacher, trajectory
from mini_o3_lite.presets import load_preset
from mini_o3_lite.rollout import replay_policy

P = load_preset("tiny")


def run(processor, n=12, seed=0):
    records, images = dataset.make_split(P.data, "train", P.min_pixels, P.max_pixels, n=n)
    return teacher.scripted_trajectories(records, [images[r.id] for r in records], processor, P,
                                         teacher.TeacherConfig(seed=seed), max_turns=P.max_turns_eval)


def test_every_kept_trajectory_answers_its_scene_correctly(tiny_processor):
    kept, patterns, stats = run(tiny_processor, n=24)
    assert stats["kept"] == len(kept) >= 20
    records = {r.id: r for r in dataset.make_split(P.data, "train", P.min_pixels, P.max_pixels, n=24)[0]}
    for t in kept:
        assert t.finish == "answer" and t.answer == records[t.id].answer and not t.exceeded
        assert all(c is None or c["valid"] for c in t.calls)  # the teacher never writes a bad call
        turns = [m["content"][0]["text"] for m in t.messages if m["role"] == "assistant"]
        assert all(turn.startswith("<think>I see ") for turn in turns)
    assert set(stats["patterns"]) <= {"depth_first", "direct", "trial_and_error", "target_maintenance"}


def test_same_seed_same_trajectories(tiny_processor):
    a, _, _ = run(tiny_processor, n=6, seed=3)
    b, _, _ = run(tiny_processor, n=6, seed=3)
    assert [t.messages for t in a] == [t.messages for t in b] and [t.input_ids for t in a] == [t.input_ids for t in b]


def test_save_and_load_round_trip(tiny_processor, tmp_path):
    kept, patterns, _ = run(tiny_processor, n=4)
    trajectory.save_trajectories(tmp_path, kept, patterns)
    back = trajectory.load_trajectories(tmp_path)
    assert [t.messages for t in back] == [t.messages for t in kept]
    assert [[im.tobytes() for im in t.images] for t in back] == [[im.tobytes() for im in t.images] for t in kept]
    paths = trajectory.load_trajectories(tmp_path, limit=2, images=False)  # file paths, opened on demand
    assert len(paths) == 2 and all(p.is_file() for t in paths for p in t.images)
    opened = trajectory.open_images(paths[1])
    assert [im.tobytes() for im in opened.images] == [im.tobytes() for im in kept[1].images]
    assert opened.messages == kept[1].messages and all(p.is_file() for p in paths[1].images)


def test_written_chunk_by_chunk_as_replayed_same_files(tiny_processor, tmp_path):
    records, images = dataset.make_split(P.data, "train", P.min_pixels, P.max_pixels, n=7)
    images = [images[r.id] for r in records]
    config = teacher.TeacherConfig(seed=1)
    kept, patterns, stats = teacher.scripted_trajectories(records, images, tiny_processor, P, config, P.max_turns_eval)
    trajectory.save_trajectories(tmp_path / "whole", kept, patterns)
    lean, _, lean_stats = teacher.scripted_trajectories(records, images, tiny_processor, P, config, P.max_turns_eval,
                                                        save_to=tmp_path / "chunks", chunk=3)
    assert lean_stats == stats and [t.messages for t in lean] == [t.messages for t in kept]
    assert all(p.is_file() for t in lean for p in t.images)  # paths, not decoded images
    whole, chunks = (sorted(p.relative_to(tmp_path / d) for p in (tmp_path / d).rglob("*"))
                     for d in ("whole", "chunks"))
    assert whole == chunks and len(whole) > 3
    for name in whole:
        if (tmp_path / "whole" / name).is_file():
            assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "chunks" / name).read_bytes(), name


def test_fewshot_keeps_correct_deduplicated_and_cuts_the_exemplars(tiny_processor):
    kept, patterns, _ = run(tiny_processor, n=12)
    exemplars = fewshot.pick_exemplars(kept, patterns)
    assert 1 <= len(exemplars) <= 4 and len({patterns[t.id] for t in exemplars}) == len(exemplars)
    records, images = dataset.make_split(P.data, "train", P.min_pixels, P.max_pixels, n=16)
    records = records[12:]  # questions the exemplars do not answer
    right = {r.id: [f"<think>I see it.</think>\n<answer>{r.answer}</answer>"] for r in records}
    wrong = {r.id: ["<think>I see it.</think>\n<answer>nothing</answer>"] for r in records}
    scripts = iter([right, right, wrong])  # three samples: the second repeats the first, the third is wrong

    def policy(active, batcher):
        if active[0].turns == 0 and active[0].id == records[0].id:
            policy.script = next(scripts)
        return replay_policy(policy.script)(active, batcher)

    got, stats = fewshot.fewshot_trajectories(None, tiny_processor, records, [images[r.id] for r in records],
                                              exemplars, P, max_turns=4, samples=3, policy=policy)
    assert stats["tried"] == 12 and stats["correct"] == 8 and stats["kept"] == len(got) == 4
    assert stats["yield"] == round(4 / 12, 4) and stats["mean_tokens_with_exemplars"] > 300
    context_messages, context_images = fewshot.fewshot_context(exemplars)
    assert len(context_images) == sum(len(t.images) for t in exemplars)
    for t in got:  # the kept conversation reads like any other: system, question, answer
        assert [m["role"] for m in t.messages] == ["system", "user", "assistant"] and len(t.images) == 1
        assert t.context_images == [] and t.answer == t.answer_key


def test_fewshot_context_reaches_the_model_input(tiny_processor):
    """The exemplars' images are in the batch before the question's, and their text is in the prompt."""
    kept, patterns, _ = run(tiny_processor, n=8)
    exemplars = fewshot.pick_exemplars(kept, patterns)[:1]
    records, images = dataset.make_split(P.data, "train", P.min_pixels, P.max_pixels, n=9)
    batcher = rollout.Batcher(tiny_processor)
    context = fewshot.fewshot_context(exemplars)
    traj = rollout.start(records[8].id, records[8].question, records[8].answer, images[records[8].id], batcher,
                         context=context)
    batch = batcher.batch([traj])
    assert batch["image_grid_thw"].shape[0] == len(exemplars[0].images) + 1
    text = tiny_processor.tokenizer.decode(traj.input_ids)
    assert text.count("<|im_start|>system") == 1 and exemplars[0].question in text
    assert text.rindex(records[8].question) > text.rindex(exemplars[0].question)


def test_full_preset_teacher_solves_every_difficulty_within_the_training_turns(qwen25_standin):
    """At the full preset's 4,096-px canvas and Mini-o3's pixel budget (40,000 to 2,000,000 pixels), no tile of
    the hierarchy is shown larger than the canvas's own resolution: the scenes must still be readable within it,
    and the preset's teacher must end most searches of each difficulty within Mini-o3's 6 training turns."""
    full = load_preset("full", model_path=str(qwen25_standin))
    records, images = dataset.make_split(full.data, "train", full.min_pixels, full.max_pixels, n=12)
    config = teacher.TeacherConfig(direct=full.teacher_direct, seed=full.seed)
    kept, patterns, stats = teacher.scripted_trajectories(records, [images[r.id] for r in records],
                                                          modeling.processor_for(full), full, config,
                                                          full.max_turns_train)
    asked = Counter(r.difficulty for r in records)
    solved = Counter(r.difficulty for r in records if r.id in {t.id for t in kept})
    assert all(solved[d] > asked[d] / 2 for d in scenes.DIFFICULTIES), (solved, stats)
    assert all(t.turns <= full.max_turns_train and len(t.input_ids) <= full.context_length for t in kept)
    assert "depth_first" in patterns.values() and "direct" in patterns.values()  # a mix, not only straight zooms


def test_trajectories_past_the_context_are_dropped_and_counted(tiny_processor):
    records, images = dataset.make_split(P.data, "train", P.min_pixels, P.max_pixels, n=8)
    images = [images[r.id] for r in records]
    config = teacher.TeacherConfig(seed=0)
    unlimited, _, _ = teacher.scripted_trajectories(records, images, tiny_processor, P, config, P.max_turns_eval,
                                                    fit_context=False)
    lengths = sorted(len(t.input_ids) for t in unlimited)
    cap = lengths[len(lengths) // 2]  # a context that the longer searches pass
    kept, _, stats = teacher.scripted_trajectories(records, images, tiny_processor, replace(P, context_length=cap),
                                                   config, P.max_turns_eval)
    assert [t.id for t in kept] == [t.id for t in unlimited if len(t.input_ids) <= cap]
    assert stats["dropped_finish"]["context"] == sum(n > cap for n in lengths) > 0
