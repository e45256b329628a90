"""Write the committed VisualProbe-lite samples: 2 easy, 2 medium and 2 hard test records of the tiny preset.

    .venv/bin/python data_samples/make_visual_probe_lite_samples.py

Output: `data_samples/visual_probe_lite/test.jsonl` and `images/vpl-test-*.png` (full-resolution
canvases). The records are the first two of each difficulty in the tiny preset's test stream, so
they are byte-identical to the same ids in `runs/tiny/data/test.jsonl`; running the script again
rewrites the same bytes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mini_o3_lite import data, dataset, scenes
from mini_o3_lite.presets import load_preset

PER_DIFFICULTY = 2
MAX_BYTES = 2_000_000
OUT = Path(__file__).resolve().parent / "visual_probe_lite"


def main() -> None:
    preset = load_preset("tiny")
    # The test stream interleaves easy, medium, hard: its first records hold two of each.
    records, images = dataset.make_split(preset.data, "test", preset.min_pixels, preset.max_pixels,
                                        n=3 * PER_DIFFICULTY)
    if sorted(r.difficulty for r in records) != sorted(list(scenes.DIFFICULTIES) * PER_DIFFICULTY):
        raise SystemExit(f"expected {PER_DIFFICULTY} records per difficulty, got {[r.difficulty for r in records]}")
    shutil.rmtree(OUT / "images", ignore_errors=True)  # no stale images from an earlier version
    data.write_records(OUT / "test.jsonl", records, images)
    files = sorted(p for p in OUT.rglob("*") if p.is_file())  # README.md included
    total = sum(p.stat().st_size for p in files)
    if total > MAX_BYTES:
        raise SystemExit(f"samples take {total:,} bytes, over the {MAX_BYTES:,} committed budget")
    for rec in data.read_records(OUT / "test.jsonl"):
        print(f"{rec.id}  {rec.difficulty:<6}  {rec.question}  -> {rec.answer}")
    print(f"wrote {len(files)} files, {total:,} bytes, to {OUT}")


if __name__ == "__main__":
    main()
