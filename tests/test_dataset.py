"""The VisualProbe-lite dataset (dataset.py): same seed, same bytes; the mix; splits built in parts; the cache."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mini_o3_lite import data, dataset, scenes
from mini_o3_lite.presets import load_preset
from mini_o3_lite.scenes import DIFFICULTIES

P = load_preset("tiny")
LO, HI = P.min_pixels, P.max_pixels
COLOURS, SHAPES = P.data.colours, P.data.shapes


def _files(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _write_split(folder, data_config, n: int = 6) -> dict[str, bytes]:
    records, images = dataset.make_split(data_config, "train", LO, HI, n=n)
    data.write_records(folder / "train.jsonl", records, images)
    return _files(folder)


# ---------------------------------------------------------------------------------------------- determinism
def test_same_seed_gives_byte_identical_files(tmp_path):
    first = _write_split(tmp_path / "a", P.data)
    second = _write_split(tmp_path / "b", P.data)
    assert len(first) == 7  # train.jsonl + 6 PNGs
    assert first == second


def test_different_seed_gives_different_scenes(tmp_path):
    base = _write_split(tmp_path / "a", P.data)
    other = _write_split(tmp_path / "b", dataclasses.replace(P.data, train_seed=P.data.train_seed + 12345))
    assert base.keys() == other.keys()  # same ids and file names ...
    pngs = [name for name in base if name.endswith(".png")]
    assert all(base[name] != other[name] for name in pngs)  # ... but other pictures
    assert base["train.jsonl"] != other["train.jsonl"]


def test_train_and_test_streams_differ():
    train, _ = dataset.make_split(P.data, "train", LO, HI, n=6)
    test, _ = dataset.make_split(P.data, "test", LO, HI, n=6)
    assert {r.meta["seed"] for r in train}.isdisjoint(r.meta["seed"] for r in test)
    assert [r.meta["objects"] for r in train] != [r.meta["objects"] for r in test]


# ---------------------------------------------------------------------------------------------- records and splits
def test_record_fields_and_choices():
    scene = scenes.generate(P.data.test_seed, "medium", P.data.canvas, LO, HI, COLOURS, SHAPES)
    fields = dataset.record_fields(scene, LO, HI, COLOURS)
    with_choices = dataset.record_fields(scene, LO, HI, COLOURS, choices=True)
    assert with_choices["choices"] is not None and len(with_choices["choices"]) == 4
    assert scene.answer in with_choices["choices"] and scene.target.colour != scene.answer
    assert fields["choices"] is None and fields["question"] == scene.question
    x0, y0, x1, y1 = fields["target_bbox"]
    assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1


def test_a_split_is_train_or_test():
    with pytest.raises(ValueError, match="split must be"):
        dataset.make_split(P.data, "val", LO, HI, n=3)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 20, 50])
@pytest.mark.parametrize("mix", [P.data.mix, (1.0, 1.0, 2.0), (0.5, 0.5, 0.0), (0.0, 0.0, 1.0)])
def test_make_split_counts_follow_the_mix(n, mix):
    config = dataclasses.replace(P.data, mix=mix)
    records, images = dataset.make_split(config, "test", LO, HI, n=n)
    assert len(records) == len(images) == n
    counts = [sum(r.difficulty == d for r in records) for d in DIFFICULTIES]
    for count, weight in zip(counts, mix, strict=True):
        assert abs(count - n * weight / sum(mix)) <= 1
    for count, weight in zip(counts[:2], mix[:2], strict=True):
        assert weight > 0 or count == 0
    firsts = [r.difficulty for r in records[: sum(c > 0 for c in counts)]]
    assert firsts == [d for d, c in zip(DIFFICULTIES, counts, strict=True) if c > 0]  # interleaved
    assert len({r.id for r in records}) == n


def test_a_split_made_in_parts_is_the_split_made_at_once():
    records, images = dataset.make_split(P.data, "test", LO, HI, n=7)
    parts = [dataset.make_split(P.data, "test", LO, HI, n=7, part=part)
             for part in (slice(2), slice(2, 5), slice(5, None))]
    assert [r.to_json() for made, _ in parts for r in made] == [r.to_json() for r in records]
    assert [im.tobytes() for _, made in parts for im in made.values()] == [images[r.id].tobytes() for r in records]


def test_dataset_built_in_parts_is_byte_identical_to_one_built_at_once(tmp_path):
    preset = load_preset("tiny", **{"data.n_train": 5, "data.n_test": 7})
    once = dataset.build_dataset(preset, tmp_path / "once")
    parts = tmp_path / "parts"
    assert dataset.build_dataset(preset, parts, {"test": 2})["test"] == {"easy": 1, "medium": 1, "hard": 0}
    with open(parts / "test.jsonl", "a") as fh:
        fh.write('{"answer": "re')  # a line cut short by an interrupted build
    dataset.build_dataset(preset, parts, {"test": 5, "train": 1}, chunk=2)
    assert dataset.build_dataset(preset, parts) == once
    assert _files(parts) == _files(tmp_path / "once")


def test_ensure_dataset_makes_only_the_records_asked_for(checkout):
    """An evaluation of 2 questions at the full preset makes 2 scenes of 4,096 px, not all 4,500, and a later,
    larger request extends what is there under the same config hash."""
    full = load_preset("full")
    folder, manifest = dataset.ensure_dataset(full, "test", 2)
    assert [r.id for r in data.read_records(folder / "test.jsonl")] == ["vpl-test-00000", "vpl-test-00001"]
    assert not (folder / "train.jsonl").exists() and len(list((folder / "images").iterdir())) == 2
    assert manifest["metrics"] == {"train": {"easy": 0, "medium": 0, "hard": 0},
                                   "test": {"easy": 1, "medium": 1, "hard": 0}}
    again = dataset.ensure_dataset(full, "test", 1)[1]  # already made: read back, nothing is made again
    assert again == json.loads(json.dumps(manifest))
    first = _files(folder)
    _, extended = dataset.ensure_dataset(full, "test", 3)
    assert extended["config_hash"] == manifest["config_hash"] and extended["metrics"]["test"]["hard"] == 1
    now = _files(folder)
    assert all(now[name] == first[name] for name in first if name.startswith("images/"))
    assert now["test.jsonl"].startswith(first["test.jsonl"]) and len(now) == len(first) + 1


def test_build_dataset_writes_both_splits(tmp_path):
    preset = load_preset("tiny", **{"data.n_train": 4, "data.n_test": 3})
    stats = dataset.build_dataset(preset, tmp_path)
    assert stats == {"train": {"easy": 1, "medium": 1, "hard": 2}, "test": {"easy": 1, "medium": 1, "hard": 1}}
    for split, n in (("train", 4), ("test", 3)):
        records = data.read_records(tmp_path / f"{split}.jsonl")
        assert len(records) == n and all(r.source == "visualprobe_lite" for r in records)
        assert records[0].load_image(tmp_path).size == (P.data.canvas, P.data.canvas)
