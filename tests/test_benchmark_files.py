"""Tests for mini_o3_lite.benchmark_files: the real benchmarks read as released (on the made-up copies in
`data_samples/benchmarks/`), and the error reports on broken copies."""

from __future__ import annotations

import base64
import importlib.util
import json
import shutil
from pathlib import Path

import pytest
from test_data import _assert_names  # the same check of a DataError's file, line and field as the kit's own records

from mini_o3_lite import benchmark_files
from mini_o3_lite.data import DataError

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "data_samples" / "benchmarks"


def _copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


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
    recs = benchmark_files.load_visual_probe(FIXTURES / "visual_probe")
    assert [(r.id, r.difficulty, r.answer) for r in recs] == [
        ("easy-0", "easy", "red"), ("easy-1", "easy", "blue"), ("hard-0", "hard", "green"), ("train-0", None, "yellow")]
    assert recs[0].question == "What colour is the small square in the picture?" and recs[0].source == "visual_probe"
    assert recs[0].load_image().size == (64, 64)
    one = benchmark_files.load_visual_probe(FIXTURES / "visual_probe" / "VisualProbe_Hard" / "val.json")
    assert [r.id for r in one] == ["hard-0"]
    # image paths relative to the JSON's own folder work too, as do .jsonl copies
    root = _copy("visual_probe", tmp_path)
    rows = json.loads((root / "VisualProbe_Easy" / "val.json").read_text())
    for row in rows:
        row["images"] = [row["images"][0].removeprefix("VisualProbe_Easy/")]
    (root / "VisualProbe_Easy" / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    again = benchmark_files.load_visual_probe(root / "VisualProbe_Easy" / "val.jsonl")
    assert [r.answer for r in again] == ["red", "blue"]


def test_load_vstar() -> None:
    recs = benchmark_files.load_vstar(FIXTURES / "vstar")
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
    recs = benchmark_files.load_hrbench(FIXTURES / "hrbench" / "hr_bench_4k.tsv", cache_dir=tmp_path / "cache")
    assert [r.answer for r in recs] == ["A", "B", "C", "D"]
    assert recs[1].choices == ["yellow", "red", "blue", "green"] and recs[1].choices[1] == "red"
    assert recs[0].meta["category"] == "single" and recs[3].id == "hr_bench_4k-3"
    assert len({r.image for r in recs}) == 1 and len(list((tmp_path / "cache").iterdir())) == 1  # one picture
    assert recs[0].load_image().size == (64, 64)
    eight = benchmark_files.load_hrbench(FIXTURES / "hrbench" / "hr_bench_8k.tsv",
                                         cache_dir=tmp_path / "c8")
    assert [r.meta["category"] for r in eight] == ["cross", "cross"]


def test_load_mme_realworld() -> None:
    recs = benchmark_files.load_mme_realworld(FIXTURES / "mme_realworld" / "MME_RealWorld.json")
    assert [r.answer for r in recs] == ["B", "C", "A"]
    assert recs[0].choices == ["0", "1", "2", "3", "None of the above"]
    assert recs[0].meta == {"task": "Perception", "subtask": "Monitoring", "category": "Vehicle/counting"}
    assert recs[2].load_image().size == (64, 64)


# ---------------------------------------------------------------- loaders on bad copies
def test_visual_probe_bad_entries(tmp_path: Path) -> None:
    root = _copy("visual_probe", tmp_path)
    val = root / "VisualProbe_Easy" / "val.json"
    (root / "VisualProbe_Easy" / "data" / "visual_probe_easy_1.jpg").unlink()
    with pytest.raises(DataError, match="image file not found") as info:
        benchmark_files.load_visual_probe(val)
    _assert_names(info.value, val, 11, "images")  # the second item of the list starts on line 11
    got = benchmark_files.load_visual_probe(val, on_error="skip")
    assert [r.id for r in got] == ["easy-0"] and [(s.line, s.field) for s in got.skipped] == [(11, "images")]
    rows = json.loads(val.read_text())
    del rows[0]["solution"]
    val.write_text(json.dumps(rows, indent=2))
    with pytest.raises(DataError, match="missing required field") as info:
        benchmark_files.load_visual_probe(val)
    _assert_names(info.value, val, 2, "solution")
    val.write_text(val.read_text().replace('"problem":', '"problem"', 1))
    with pytest.raises(DataError, match="malformed JSON") as info:
        benchmark_files.load_visual_probe(val, on_error="skip")  # a broken JSON list cannot be skipped past
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
        benchmark_files.load_vstar(root)
    _assert_names(info.value, jsonl, 2, "label")
    got = benchmark_files.load_vstar(root, on_error="skip")
    assert [r.id for r in got] == ["vstar-0"]
    assert [(s.line, s.field) for s in got.skipped] == [(2, "label"), (3, "label"), (4, None)]
    with pytest.raises(DataError, match="no test_questions.jsonl"):
        benchmark_files.load_vstar(root / "direct_attributes")


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
        benchmark_files.load_hrbench(path)
    _assert_names(info.value, path, 3, "image")
    got = benchmark_files.load_hrbench(path, on_error="skip")
    assert [r.id for r in got] == ["hr_bench_4k-0", "hr_bench_4k-4"] and got[0].image == got[1].image
    assert [(s.line, s.field) for s in got.skipped] == [(3, "image"), (4, "image"), (5, "answer"), (7, None)]
    assert "cannot be decoded" in got.skipped[1].reason
    bad_header = _tsv(tmp_path / "bad_header.tsv", [good], header=["idx", "question", "answer", "A", "B", "C", "D",
                                                                   "category", "cycle_category", "image"])
    with pytest.raises(DataError, match="header lacks") as info:
        benchmark_files.load_hrbench(bad_header, on_error="skip")
    _assert_names(info.value, bad_header, 1, "index")
    (tmp_path / "empty.tsv").write_text("")
    with pytest.raises(DataError, match="empty"):
        benchmark_files.load_hrbench(tmp_path / "empty.tsv")


def test_mme_realworld_bad_entries(tmp_path: Path) -> None:
    root = _copy("mme_realworld", tmp_path)
    path = root / "MME_RealWorld.json"
    rows = json.loads(path.read_text())
    rows[0]["Answer choices"][1] = "B) no parenthesis"
    rows[1]["Ground truth"] = "F"
    (root / rows[2]["Image"]).write_bytes(b"\xff\xd8 truncated jpeg")
    path.write_text(json.dumps(rows, indent=4))
    with pytest.raises(DataError, match="expected '\\(B\\) ...'") as info:
        benchmark_files.load_mme_realworld(path)
    _assert_names(info.value, path, 2, "Answer choices")
    got = benchmark_files.load_mme_realworld(path, on_error="skip")
    assert list(got) == [] and [(s.line, s.field) for s in got.skipped] == [
        (2, "Answer choices"), (19, "Ground truth"), (36, "Image")]
    path.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(DataError, match="expected a JSON list"):
        benchmark_files.load_mme_realworld(path, on_error="skip")


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
    got = benchmark_files.load_visual_probe(path, on_error="skip")
    assert [(r.id, r.difficulty) for r in got] == [("medium-7", "medium")]
    assert Path(got[0].image).read_bytes() == jpg and Path(got[0].image).parent == tmp_path / "test_images"
    assert [(s.line, s.field) for s in got.skipped] == [(2, "images")]
