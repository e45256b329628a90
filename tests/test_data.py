"""Tests for mini_o3_lite.data: the record format, the benchmark loaders and their error reports."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from mini_o3_lite import data
from mini_o3_lite.data import DataError, Record, Skipped

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "data_samples" / "benchmarks"


def _records_and_images() -> tuple[list[Record], dict[str, Image.Image]]:
    records, images = [], {}
    for i, (colour, level) in enumerate([("red", "easy"), ("blue", "medium"), ("green", "hard")]):
        rid = f"scene-{i:03d}"
        img = Image.new("RGB", (48, 32), (128, 128, 128))
        img.paste((255, 0, 0) if colour == "red" else (0, 0, 255) if colour == "blue" else (0, 255, 0),
                  (4 * i, 4, 4 * i + 6, 10))
        images[rid] = img
        records.append(Record(id=rid, image="", question=f"What colour is the square? ({i})", answer=colour,
                              choices=None if i else ["red", "blue"], difficulty=level,
                              target_bbox=[0.1, 0.125, 0.25, 0.3125], meta={"seed": i, "distractors": [1, 2]}))
    return records, images


def _write_kit(tmp_path: Path) -> Path:
    records, images = _records_and_images()
    path = tmp_path / "kit" / "records.jsonl"
    data.write_records(path, records, images)
    return path


def _copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def _assert_names(err: DataError, file: Path, line: int | None, field: str | None) -> None:
    assert err.file == str(file) and err.line == line and err.field == field
    text = str(err)
    assert str(file) in text
    if line is not None:
        assert f"line {line}" in text
    if field is not None:
        assert f"field '{field}'" in text


# ---------------------------------------------------------------- the kit's own format
def test_round_trip_is_byte_identical(tmp_path: Path) -> None:
    records, images = _records_and_images()
    a, b = tmp_path / "a" / "r.jsonl", tmp_path / "b" / "r.jsonl"
    written = data.write_records(a, records, images)
    data.write_records(b, records, images)
    files_a = sorted(p.relative_to(a.parent) for p in a.parent.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b.parent) for p in b.parent.rglob("*") if p.is_file())
    assert len(files_a) == 4
    for rel in files_a:
        assert (a.parent / rel).read_bytes() == (b.parent / rel).read_bytes()
    back = data.read_records(a)
    assert back == written and back.skipped == []
    assert back[0].image == "images/scene-000.png" and records[0].image == ""  # the caller's list untouched
    assert list(back[1].load_image(a.parent).getdata()) == list(images["scene-001"].getdata())
    # reading and writing again (images now on disk, paths relative) gives the same JSONL bytes
    data.write_records(tmp_path / "a" / "again.jsonl", back)
    assert (tmp_path / "a" / "again.jsonl").read_bytes() == a.read_bytes()
    first = json.loads(a.read_text().splitlines()[0])
    assert list(first) == sorted(first) and first["target_bbox"] == [0.1, 0.125, 0.25, 0.3125]


def test_png_bytes_ignore_metadata(tmp_path: Path) -> None:
    img = Image.new("RGB", (8, 8), (10, 20, 30))
    noisy = Image.open(io.BytesIO(_png_with_text(img)))
    rec = Record(id="x", image="", question="q", answer="a")
    data.write_records(tmp_path / "one" / "r.jsonl", [rec], {"x": img})
    data.write_records(tmp_path / "two" / "r.jsonl", [rec], {"x": noisy})
    assert (tmp_path / "one/images/x.png").read_bytes() == (tmp_path / "two/images/x.png").read_bytes()


def _png_with_text(img: Image.Image) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Creation Time", "2024-01-01 12:00")
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info, dpi=(300, 300))
    return buf.getvalue()


def test_record_json_round_trip_and_validation() -> None:
    rec = _records_and_images()[0][0]
    assert Record.from_json(rec.to_json()) == rec
    with pytest.raises(DataError, match="target_bbox"):
        Record.from_json({**rec.to_json(), "target_bbox": [0.5, 0.1, 0.4, 0.2]})
    with pytest.raises(DataError, match="unknown field"):
        Record.from_json({**rec.to_json(), "colour": "red"})
    with pytest.raises(DataError, match="every choice"):
        Record.from_json({**rec.to_json(), "choices": ["a", 1]})


def _bad_lines(tmp_path: Path) -> tuple[Path, list[tuple[int, str | None, str]]]:
    """A kit JSONL with one good record and one bad line of each kind; returns the expected skips."""
    path = _write_kit(tmp_path)
    good = [json.loads(s) for s in path.read_text().splitlines()]
    (path.parent / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    lines = [
        json.dumps(good[0]),                                                   # 1 good
        '{"id": "scene-9", "image": "images/scene-000.png",',                  # 2 malformed JSON
        json.dumps({k: v for k, v in good[1].items() if k != "question"}),     # 3 missing field
        json.dumps({**good[1], "answer": 3}),                                  # 4 wrong type
        json.dumps({**good[1], "id": "scene-404", "image": "images/nope.png"}),  # 5 missing image
        json.dumps({**good[2], "image": "images/broken.png"}),                 # 6 undecodable image
        "",                                                                    # 7 blank: ignored
        json.dumps(good[0]),                                                   # 8 duplicate id
    ]
    path.write_text("\n".join(lines) + "\n")
    expected = [(2, None, "malformed JSON"), (3, "question", "missing required field"),
                (4, "answer", "expected str, got int"), (5, "image", "image file not found"),
                (6, "image", "image cannot be decoded"), (8, "id", "duplicate id")]
    return path, expected


def test_read_records_raises_on_each_bad_line(tmp_path: Path) -> None:
    path, expected = _bad_lines(tmp_path)
    lines = path.read_text().splitlines()
    for number, field, reason in expected:
        keep = [lines[0]] + ([lines[number - 1]] if number != 8 else [lines[7]])
        single = tmp_path / f"bad{number}.jsonl"
        shutil.copytree(path.parent / "images", tmp_path / "images", dirs_exist_ok=True)
        single.write_text("\n".join(keep) + "\n")
        with pytest.raises(DataError, match=reason) as info:
            data.read_records(single)
        _assert_names(info.value, single, 2, field)


def test_read_records_skip_reports_exactly_what_it_skipped(tmp_path: Path) -> None:
    path, expected = _bad_lines(tmp_path)
    got = data.read_records(path, on_error="skip")
    assert [r.id for r in got] == ["scene-000"]
    assert [(s.line, s.field) for s in got.skipped] == [(n, f) for n, f, _ in expected]
    for skip, (_, _, reason) in zip(got.skipped, expected, strict=True):
        assert isinstance(skip, Skipped) and skip.file == str(path) and reason in skip.reason
    # without image verification the undecodable PNG passes (only its existence is checked)
    assert [r.id for r in data.read_records(path, on_error="skip", verify_images=False)] == ["scene-000", "scene-002"]


def test_file_level_errors_raise_even_when_skipping(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n")
    with pytest.raises(DataError, match="empty") as info:
        data.read_records(empty, on_error="skip")
    _assert_names(info.value, empty, None, None)
    with pytest.raises(DataError, match="file not found"):
        data.read_records(tmp_path / "missing.jsonl")
    with pytest.raises(ValueError, match="on_error"):
        data.read_records(_write_kit(tmp_path), on_error="ignore")


def test_train_test_split_is_deterministic_and_disjoint() -> None:
    records = [Record(id=str(i), image="x.png", question="q", answer="a") for i in range(20)]
    train, test = data.train_test_split(records, 0.25, seed=3)
    assert (train, test) == data.train_test_split(records, 0.25, seed=3)
    assert len(test) == 5 and not {r.id for r in train} & {r.id for r in test}
    assert [r.id for r in train] == sorted((r.id for r in train), key=int)  # input order kept
    assert data.train_test_split(records, 0.25, seed=4)[1] != test


# ---------------------------------------------------------------- the fixtures and their script
def test_fixture_script_is_deterministic_and_matches_committed(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("fixtures", REPO / "data_samples" / "make_benchmark_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    one, two = module.main(tmp_path / "one"), module.main(tmp_path / "two")
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())
    assert all((one / f).read_bytes() == (two / f).read_bytes() for f in files)
    committed = sorted(p.relative_to(FIXTURES) for p in FIXTURES.rglob("*") if p.is_file() and p.name != "README.md")
    assert files == committed
    assert sum((FIXTURES / f).stat().st_size for f in committed) < 200_000
    for f in files:  # text files carry no image-codec bytes, so they must match exactly
        if f.suffix in (".json", ".jsonl"):
            assert (one / f).read_bytes() == (FIXTURES / f).read_bytes(), f


# ---------------------------------------------------------------- loaders on the fixtures
def test_load_visual_probe(tmp_path: Path) -> None:
    recs = data.load_benchmark("visual_probe", FIXTURES / "visual_probe")
    assert [(r.id, r.difficulty, r.answer) for r in recs] == [
        ("easy-0", "easy", "red"), ("easy-1", "easy", "blue"), ("hard-0", "hard", "green"), ("train-0", None, "yellow")]
    assert recs[0].question == "What colour is the small square in the picture?" and recs[0].source == "visual_probe"
    assert recs[0].load_image().size == (64, 64)
    one = data.load_visual_probe(FIXTURES / "visual_probe" / "VisualProbe_Hard" / "val.json")
    assert [r.id for r in one] == ["hard-0"]
    # image paths relative to the JSON's own folder work too, as do .jsonl copies
    root = _copy("visual_probe", tmp_path)
    rows = json.loads((root / "VisualProbe_Easy" / "val.json").read_text())
    for row in rows:
        row["images"] = [row["images"][0].removeprefix("VisualProbe_Easy/")]
    (root / "VisualProbe_Easy" / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [r.answer for r in data.load_visual_probe(root / "VisualProbe_Easy" / "val.jsonl")] == ["red", "blue"]


def test_load_vstar() -> None:
    recs = data.load_benchmark("V*", FIXTURES / "vstar")
    assert [(r.id, r.answer, r.meta["category"]) for r in recs] == [("vstar-0", "B", "direct_attributes"),
                                                                    ("vstar-1", "A", "direct_attributes"),
                                                                    ("vstar-2", "B", "relative_position")]
    assert recs[0].question == "What is the color of the red square?"
    assert recs[0].choices == ["blue", "red", "green", "white"] and recs[2].choices == ["left", "right"]
    ann = json.loads((FIXTURES / "vstar" / "direct_attributes" / "sa_1001.json").read_text())
    x, y, w, h = ann["bbox"][0]
    assert recs[0].target_bbox == [x / 64, y / 64, (x + w) / 64, (y + h) / 64]
    assert recs[0].meta["target_object"] == ["red square"]


def test_load_hrbench(tmp_path: Path) -> None:
    recs = data.load_hrbench(FIXTURES / "hrbench" / "hr_bench_4k.tsv", cache_dir=tmp_path / "cache")
    assert [r.answer for r in recs] == ["A", "B", "C", "D"]
    assert recs[1].choices == ["yellow", "red", "blue", "green"] and recs[1].choices[1] == "red"
    assert recs[0].meta["category"] == "single" and recs[3].id == "hr_bench_4k-3"
    assert len({r.image for r in recs}) == 1 and len(list((tmp_path / "cache").iterdir())) == 1  # one picture
    assert recs[0].load_image().size == (64, 64)
    eight = data.load_benchmark("hrbench_8k", FIXTURES / "hrbench" / "hr_bench_8k.tsv", cache_dir=tmp_path / "c8")
    assert [r.meta["category"] for r in eight] == ["cross", "cross"]


def test_load_mme_realworld() -> None:
    recs = data.load_benchmark("MME-RealWorld", FIXTURES / "mme_realworld" / "MME_RealWorld.json")
    assert [r.answer for r in recs] == ["B", "C", "A"]
    assert recs[0].choices == ["0", "1", "2", "3", "None of the above"]
    assert recs[0].meta == {"task": "Perception", "subtask": "Monitoring", "category": "Vehicle/counting"}
    assert recs[2].load_image().size == (64, 64)


def test_load_benchmark_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown benchmark"):
        data.load_benchmark("imagenet", FIXTURES)


# ---------------------------------------------------------------- loaders on bad copies
def test_visual_probe_bad_entries(tmp_path: Path) -> None:
    root = _copy("visual_probe", tmp_path)
    val = root / "VisualProbe_Easy" / "val.json"
    (root / "VisualProbe_Easy" / "data" / "visual_probe_easy_1.jpg").unlink()
    with pytest.raises(DataError, match="image file not found") as info:
        data.load_visual_probe(val)
    _assert_names(info.value, val, 11, "images")  # the second item of the list starts on line 11
    got = data.load_visual_probe(val, on_error="skip")
    assert [r.id for r in got] == ["easy-0"] and [(s.line, s.field) for s in got.skipped] == [(11, "images")]
    rows = json.loads(val.read_text())
    del rows[0]["solution"]
    val.write_text(json.dumps(rows, indent=2))
    with pytest.raises(DataError, match="missing required field") as info:
        data.load_visual_probe(val)
    _assert_names(info.value, val, 2, "solution")
    val.write_text(val.read_text().replace('"problem":', '"problem"', 1))
    with pytest.raises(DataError, match="malformed JSON") as info:
        data.load_visual_probe(val, on_error="skip")  # a broken JSON list cannot be skipped past
    assert info.value.line == 6


def test_vstar_bad_entries(tmp_path: Path) -> None:
    root = _copy("vstar", tmp_path)
    jsonl = root / "test_questions.jsonl"
    lines = jsonl.read_text().splitlines()
    row = json.loads(lines[1])
    lines[1] = json.dumps({k: v for k, v in row.items() if k != "label"})
    lines[2] = json.dumps({**json.loads(lines[2]), "label": "C"})  # only A/B exist
    jsonl.write_text("\n".join(lines + ["{not json"]) + "\n")
    with pytest.raises(DataError, match="missing required field") as info:
        data.load_vstar(root)
    _assert_names(info.value, jsonl, 2, "label")
    got = data.load_vstar(root, on_error="skip")
    assert [r.id for r in got] == ["vstar-0"]
    assert [(s.line, s.field) for s in got.skipped] == [(2, "label"), (3, "label"), (4, None)]
    with pytest.raises(DataError, match="no test_questions.jsonl"):
        data.load_vstar(root / "direct_attributes")


def _tsv(path: Path, rows: list[list[str]], header: list[str] | None = None) -> Path:
    header = header or ["index", "question", "answer", "category", "A", "B", "C", "D", "cycle_category", "image"]
    path.write_text("\n".join("\t".join(r) for r in [header] + rows) + "\n")
    return path


def test_hrbench_bad_entries(tmp_path: Path) -> None:
    src = (FIXTURES / "hrbench" / "hr_bench_4k.tsv").read_text().splitlines()
    good = src[1].split("\t")
    not_image = base64.b64encode(b"definitely not an image").decode()
    rows = [good,
            good[:9] + ["@@@ not base64 @@@"],          # line 3
            good[:9] + [not_image],                     # line 4
            ["3"] + good[1:2] + ["Z"] + good[3:],       # line 5: answer not A-D
            ["4"] + good[1:9] + ["0"],                  # line 6: VLMEvalKit reference to row 0's image
            good[:5]]                                   # line 7: too few cells
    path = _tsv(tmp_path / "hr_bench_4k.tsv", rows)
    with pytest.raises(DataError, match="not valid base64") as info:
        data.load_hrbench(path)
    _assert_names(info.value, path, 3, "image")
    got = data.load_hrbench(path, on_error="skip")
    assert [r.id for r in got] == ["hr_bench_4k-0", "hr_bench_4k-4"] and got[0].image == got[1].image
    assert [(s.line, s.field) for s in got.skipped] == [(3, "image"), (4, "image"), (5, "answer"), (7, None)]
    assert "cannot be decoded" in got.skipped[1].reason
    bad_header = _tsv(tmp_path / "bad_header.tsv", [good], header=["idx", "question", "answer", "A", "B", "C", "D",
                                                                   "category", "cycle_category", "image"])
    with pytest.raises(DataError, match="header lacks") as info:
        data.load_hrbench(bad_header, on_error="skip")
    _assert_names(info.value, bad_header, 1, "index")
    (tmp_path / "empty.tsv").write_text("")
    with pytest.raises(DataError, match="empty"):
        data.load_hrbench(tmp_path / "empty.tsv")


def test_mme_realworld_bad_entries(tmp_path: Path) -> None:
    root = _copy("mme_realworld", tmp_path)
    path = root / "MME_RealWorld.json"
    rows = json.loads(path.read_text())
    rows[0]["Answer choices"][1] = "B) no parenthesis"
    rows[1]["Ground truth"] = "F"
    (root / rows[2]["Image"]).write_bytes(b"\xff\xd8 truncated jpeg")
    path.write_text(json.dumps(rows, indent=4))
    with pytest.raises(DataError, match="expected '\\(B\\) ...'") as info:
        data.load_mme_realworld(path)
    _assert_names(info.value, path, 2, "Answer choices")
    got = data.load_mme_realworld(path, on_error="skip")
    assert list(got) == [] and [(s.line, s.field) for s in got.skipped] == [
        (2, "Answer choices"), (19, "Ground truth"), (36, "Image")]
    path.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(DataError, match="expected a JSON list"):
        data.load_mme_realworld(path, on_error="skip")


def test_visual_probe_parquet_with_embedded_images(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    jpg = (FIXTURES / "visual_probe" / "VisualProbe_Hard" / "data" / "visual_probe_hard_0.jpg").read_bytes()
    rows = [{"images": [{"bytes": jpg, "path": "a.jpg"}], "problem": "<image>\nColour?", "solution": "green",
             "data_source": "visual_probe_medium", "doc_id": 7},
            {"images": [{"bytes": b"garbage", "path": "b.jpg"}], "problem": "<image>\nColour?", "solution": "red",
             "data_source": "visual_probe_medium", "doc_id": 8}]
    path = tmp_path / "test.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    got = data.load_visual_probe(path, on_error="skip")
    assert [(r.id, r.difficulty) for r in got] == [("medium-7", "medium")]
    assert Path(got[0].image).read_bytes() == jpg and Path(got[0].image).parent == tmp_path / "test_images"
    assert [(s.line, s.field) for s in got.skipped] == [(2, "images")]


def test_lazy_images_open_each_record_image_on_access(tmp_path):
    from mini_o3_lite import scenes
    from mini_o3_lite.presets import load_preset

    p = load_preset("tiny")
    records, images = scenes.make_split(p.data, "test", p.min_pixels, p.max_pixels, n=3)
    data.write_records(tmp_path / "test.jsonl", records, images)
    lazy = data.LazyImages(data.read_records(tmp_path / "test.jsonl"), tmp_path)
    assert len(lazy) == 3
    assert [lazy[i].tobytes() == images[r.id].tobytes() for i, r in enumerate(records)] == [True] * 3
    assert [im.tobytes() for im in lazy[1:]] == [images[r.id].tobytes() for r in records[1:]]
    with pytest.raises(IndexError):
        lazy[3]
