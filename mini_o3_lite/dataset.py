"""The VisualProbe-lite dataset: scenes drawn by seed, written as the kit's records, built once per config.

A split is a sequence of scenes (`scenes.generate`) whose difficulties follow the preset's mix
(`difficulty_order`) and whose seeds come from the split's own stream, so train and test never share a
scene. Each scene becomes a `data.Record` whose question and answer are the scene's, plus the ground truth
later stages need under `meta` (`record_fields`: the objects, the oracle's tile path, the dot's apparent
size after each zoom). `ensure_dataset` keeps `runs/<preset>/data/` built, under the hash of what the
data depends on (`dataset_config`), and only as far as a stage asks: the same seed always gives the same
bytes, however the files were built up.
"""

from __future__ import annotations

import random
from dataclasses import asdict
from pathlib import Path

from .data import Record, write_records
from .manifest import MANIFEST, cached_stage, config_hash, read_manifest, stage_dir
from .scenes import DIFFICULTIES, Scene, direct_box, full_region, generate, sub_region, tile_path, view_scale


def record_fields(
    scene: Scene, min_pixels: int, max_pixels: int, colours: tuple[str, ...], choices: bool = False
) -> dict:
    """Everything a record keeps: the question and answer, plus the ground truth later stages need."""
    target, c = scene.target, scene.canvas
    path = tile_path(scene, min_pixels, max_pixels)
    full_scale = view_scale(full_region(scene), min_pixels, max_pixels)
    after = [round(target.mark_size * view_scale(tuple(s["region"]), min_pixels, max_pixels), 2) for s in path]
    box = direct_box(scene, min_pixels, max_pixels)
    box_region = sub_region(full_region(scene), box)
    rel = lambda b: [round(v / c, 4) for v in b]  # noqa: E731
    options = None
    if choices:
        rng = random.Random(f"choices/{scene.seed}")
        options = sorted(rng.sample([m for m in colours if m != target.mark], 3) + [target.mark], key=colours.index)
    return {
        "question": scene.question,
        "answer": scene.answer,
        "choices": options,
        "difficulty": scene.difficulty,
        "target_bbox": rel(target.box),
        "meta": {
            "seed": scene.seed,
            "canvas": c,
            "view_side": scene.view_side,
            "target": {"colour": target.colour, "shape": target.shape, "mark": target.mark},
            "objects": [asdict(o) | {"box": rel(o.box)} for o in scene.objects],
            "decoy_boxes": [rel(o.box) for o in scene.objects if o.role == "decoy"],
            "n_distractors": sum(o.role == "distractor" for o in scene.objects),
            "n_decoys": sum(o.role == "decoy" for o in scene.objects),
            "n_same_shape": sum(o.role == "distractor" and o.shape == target.shape for o in scene.objects),
            "tile_path": path,
            "oracle_depth": len(path),
            "direct_box": box,
            "detail_px": {
                "full_view": round(target.mark_size * full_scale, 2),
                "after_tile_path": after,
                "after_direct_box": round(target.mark_size * view_scale(box_region, min_pixels, max_pixels), 2),
            },
            "target_px_full_view": round(target.size * full_scale, 2),
        },
    }


def difficulty_order(data, split: str, n: int | None = None) -> list[str]:
    """The difficulty of each record of a split of `n` records (default: the preset's size of that split).

    Difficulties follow `data.mix`, interleaved deterministically (easy, medium, hard, easy, ...).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    n = n if n is not None else (data.n_train if split == "train" else data.n_test)
    names = list(DIFFICULTIES)
    counts = [round(n * w / sum(data.mix)) for w in data.mix]
    counts[1] = min(counts[1], n - counts[0])  # two halves rounded up (mix (0.5, 0.5, 0), odd n) must not pass n
    counts[-1] = n - sum(counts[:-1])
    return [d for i in range(n) for d, c in zip(names, counts, strict=True) if i < c]


def make_split(data, split: str, min_pixels: int, max_pixels: int, n: int | None = None, choices: bool = False,
               part: slice | None = None):
    """Records and images of a split of `n` records (default: the preset's size). Train and test draw scene seeds
    from disjoint streams.

    `data` is a preset's `DataConfig`; difficulties follow `difficulty_order`. `part` makes only some records of
    the split (`slice(2)`: its first two): record i depends on i and the split's size alone, so a split made in
    parts is the split made at once.
    """
    order = difficulty_order(data, split, n)
    base = data.train_seed if split == "train" else data.test_seed
    records, images = [], {}
    for i in range(len(order))[part or slice(None)]:
        scene = generate(base + i, order[i], data.canvas, min_pixels, max_pixels, data.colours, data.shapes)
        rid = f"vpl-{split}-{i:05d}"
        fields = record_fields(scene, min_pixels, max_pixels, data.colours, choices)
        records.append(Record(id=rid, image="", source="visualprobe_lite", **fields))
        images[rid] = scene.render()
    return records, images


def build_dataset(preset, folder: str | Path, sizes: dict[str, int] | None = None, chunk: int = 16) -> dict:
    """Write `train.jsonl` and `test.jsonl` (+ PNGs) for a preset into `folder`; returns statistics.

    `sizes` asks for the first records of some splits only (`{"test": 2}`; default: both splits whole). What
    `folder` already holds of the same dataset (`ensure_dataset` sees to that) is extended, never made again,
    `chunk` records at a time, so that a 4,096-px split is never held in memory at once and an interrupted
    build resumes where it stopped. The statistics count the records of each split now in `folder`.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for split, stop in (sizes or {"train": preset.data.n_train, "test": preset.data.n_test}).items():
        path = folder / f"{split}.jsonl"
        for start in range(_records_written(path), stop, chunk):
            records, images = make_split(preset.data, split, preset.min_pixels, preset.max_pixels,
                                         part=slice(start, min(start + chunk, stop)))
            write_records(path, records, images, append=True)
    stats = {}
    for split in ("train", "test"):
        built = difficulty_order(preset.data, split)[: _records_written(folder / f"{split}.jsonl")]
        stats[split] = {d: built.count(d) for d in DIFFICULTIES}
    return stats


def _records_written(path: Path) -> int:
    """Records in a split's JSONL; a last line cut short (a build interrupted mid-write) is removed."""
    if not path.is_file():
        return 0
    text = path.read_bytes()
    whole = text[: text.rfind(b"\n") + 1]
    if whole != text:
        path.write_bytes(whole)
    return whole.count(b"\n")


def dataset_config(preset) -> dict:
    """What a VisualProbe-lite dataset depends on (its cache key): the data settings and the pixel budget."""
    return {"data": asdict(preset.data), "min_pixels": preset.min_pixels, "max_pixels": preset.max_pixels}


def ensure_dataset(preset, split: str | None = None, n: int | None = None) -> tuple:
    """`runs/<preset>/data/`, built once per config and only as far as it is asked for.

    Every stage that reads the data calls this. With no `split`, both splits whole (training needs them);
    with a `split`, only its first `n` records (all of it when `n` is None): an evaluation of a few questions
    draws and saves those scenes, not the thousands of large canvases of a whole dataset. A later, larger
    request extends the files (`build_dataset`), so however the dataset is built up, it holds the same bytes,
    under the same config hash, as one built at once. Returns (folder, manifest); the manifest's metrics count
    the records built per split and difficulty.
    """
    whole = {"train": preset.data.n_train, "test": preset.data.n_test}
    if split is not None and split not in whole:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    sizes = whole if split is None else {split: whole[split] if n is None else min(n, whole[split])}
    folder, config = stage_dir(preset.name, "data"), dataset_config(preset)
    manifest = read_manifest(folder)
    if manifest is not None and config_hash(manifest["config"]) == config_hash(config):
        if all(sum(manifest["metrics"][s].values()) >= k for s, k in sizes.items()):
            return folder, manifest
        (folder / MANIFEST).unlink()  # the same scenes, too few of them: extended below, not made again
    build = lambda f: build_dataset(preset, f, sizes)  # noqa: E731
    stage = cached_stage(folder, config, build, seed=preset.data.train_seed)
    return folder, stage
