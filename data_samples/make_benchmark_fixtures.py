"""Make tiny, fake but format-faithful copies of the real benchmarks for the loaders' tests.

    python data_samples/make_benchmark_fixtures.py [--out data_samples/benchmarks]

Each folder under `benchmarks/` has the file layout and field names of the released benchmark (see the
docstring of `mini_o3_lite/benchmark_files.py` for the sources) with 1-4 made-up questions about 64x64 pictures
drawn here with PIL. Nothing is copied from the real data. The output is deterministic: a fixed seed,
fixed JPEG settings and no timestamps, so running it twice gives the same bytes.
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import random
import shutil
from pathlib import Path

from PIL import Image, ImageDraw

COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (230, 200, 30),
           "white": (245, 245, 245), "black": (20, 20, 20)}


def picture(seed: int, target: str, size: int = 64) -> tuple[Image.Image, list[int]]:
    """A grey scene with a few distractor blobs and one small square of colour `target`; returns its box."""
    rng = random.Random(seed)
    img = Image.new("RGB", (size, size), (128, 128, 128))
    draw = ImageDraw.Draw(img)
    for _ in range(5):
        x, y, r = rng.randrange(4, size - 12), rng.randrange(4, size - 12), rng.randrange(3, 7)
        draw.ellipse([x, y, x + r, y + r], fill=rng.choice([c for n, c in COLOURS.items() if n != target]))
    x, y = rng.randrange(2, size - 10), rng.randrange(2, size - 10)
    draw.rectangle([x, y, x + 5, y + 5], fill=COLOURS[target])
    return img, [x, y, 6, 6]  # [x, y, w, h] in pixels, as V* writes boxes


def jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90, optimize=False, progressive=False)
    return buf.getvalue()


def write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)


def visual_probe(out: Path) -> None:
    """HF Mini-o3/VisualProbe_*: `<split>/val.json` (train: `train.json`), images under `<split>/data/`."""
    splits = {"VisualProbe_Easy": ("val", "easy", ["red", "blue"]), "VisualProbe_Hard": ("val", "hard", ["green"]),
              "VisualProbe_train": ("train", "train", ["yellow"])}
    for seed, (folder, (stem, level, targets)) in enumerate(splits.items()):
        rows = []
        for i, colour in enumerate(targets):
            name = f"visual_probe_{level}_{i}.jpg"
            img, _ = picture(100 * seed + i, colour)
            write(out / folder / "data" / name, jpeg(img))
            rows.append({"images": [f"{folder}/data/{name}"],
                         "problem": "<image>\nWhat colour is the small square in the picture?",
                         "solution": colour, "data_source": f"visual_probe_{level}", "doc_id": i})
        write(out / folder / f"{stem}.json", json.dumps(rows, indent=2) + "\n")


def vstar(out: Path) -> None:
    """HF craigwu/vstar_bench: `test_questions.jsonl` + `<category>/<stem>.jpg` with a same-stem JSON."""
    items = [("direct_attributes", "sa_1001", "red", ["blue", "red", "green", "white"], "B"),
             ("direct_attributes", "sa_1002", "blue", ["blue", "yellow", "red", "black"], "A"),
             ("relative_position", "sa_2001", "green", ["left", "right"], "B")]
    lines = []
    for qid, (category, stem, colour, options, label) in enumerate(items):
        img, box = picture(200 + qid, colour)
        write(out / category / f"{stem}.jpg", jpeg(img))
        question = (f"What is the color of the {colour} square?" if category == "direct_attributes"
                    else "Is the square on the left or right side of the dot?")
        correct = options["ABCD".index(label)]
        ann = {"target_object": [f"{colour} square"], "bbox": [box], "question": question,
               "options": [correct] + [o for o in options if o != correct]}
        write(out / category / f"{stem}.json", json.dumps(ann) + "\n")
        text = "\n".join([question] + [f"({'ABCD'[i]}) {o}" for i, o in enumerate(options)]
                         + ["Answer with the option's letter from the given choices directly."])
        lines.append(json.dumps({"image": f"{category}/{stem}.jpg", "text": text, "category": category,
                                 "question_id": qid, "label": label}))
    write(out / "test_questions.jsonl", "\n".join(lines) + "\n")


def hrbench(out: Path) -> None:
    """HF DreamMr/HR-Bench: `hr_bench_4k.tsv` / `hr_bench_8k.tsv`, one base64 JPEG per row."""
    header = ["index", "question", "answer", "category", "A", "B", "C", "D", "cycle_category", "image"]
    options = ["red", "blue", "green", "yellow"]
    for name, seed, category, n in (("hr_bench_4k", 300, "single", 4), ("hr_bench_8k", 400, "cross", 2)):
        img, _ = picture(seed, "red")
        blob = base64.b64encode(jpeg(img)).decode("ascii")
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        for cycle in range(n):  # HR-Bench repeats a question with its options rotated (cycle_category)
            opts = options[-cycle:] + options[:-cycle] if cycle else options
            writer.writerow([cycle, "What is the colour of the small square?", "ABCD"[opts.index("red")],
                             category, *opts, cycle, blob])
        write(out / f"{name}.tsv", buf.getvalue())


def mme_realworld(out: Path) -> None:
    """HF yifanzhang114/MME-RealWorld: `MME_RealWorld.json` (a list) + images in unpacked archive folders."""
    items = [("Perception/Monitoring/Vehicle/counting/0001", "monitoring_images/000001.jpg", "Monitoring",
              "Vehicle/counting", "How many red squares are in the image?", ["0", "1", "2", "3"], "B"),
             ("Perception/Diagram_and_Table/diagram/0002", "diagram_and_table/chart_2.jpg", "Diagram and Table",
              "diagram", "What colour is the small square?", ["red", "blue", "green", "black"], "C"),
             ("Reasoning/Autonomous_Driving/Objects/0003", "AutonomousDriving/nuScenes/cam_front_3.jpg",
              "Autonomous_Driving", "Objects", "Which colour is not present?", ["grey", "blue", "green", "red"], "A")]
    rows = []
    for i, (qid, image, subtask, category, text, opts, truth) in enumerate(items):
        img, _ = picture(500 + i, ["red", "green", "blue"][i])
        write(out / image, jpeg(img))
        rows.append({"Question_id": qid, "Image": image, "Text": text, "Question Type": "Multiple Choice",
                     "Answer choices": [f"({'ABCDE'[j]}) {o}" for j, o in enumerate(opts + ["None of the above"])],
                     "Ground truth": truth, "Task": qid.split("/")[0], "Subtask": subtask, "Category": category})
    write(out / "MME_RealWorld.json", json.dumps(rows, indent=4) + "\n")


def main(out: str | Path = Path(__file__).parent / "benchmarks") -> Path:
    out = Path(out)
    for name, make in (("visual_probe", visual_probe), ("vstar", vstar), ("hrbench", hrbench),
                       ("mme_realworld", mme_realworld)):
        shutil.rmtree(out / name, ignore_errors=True)
        make(out / name)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "benchmarks"))
    print(f"wrote fixtures under {main(parser.parse_args().out)}")
