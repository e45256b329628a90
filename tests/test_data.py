"""Tests for mini_o3_lite.data: the record format, its reader and its error reports."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from mini_o3_lite import data, dataset
from mini_o3_lite.data import DataError, Record, Skipped
from mini_o3_lite.presets import load_preset


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


def test_lazy_images_open_each_record_image_on_access(tmp_path):
    p = load_preset("tiny")
    records, images = dataset.make_split(p.data, "test", p.min_pixels, p.max_pixels, n=3)
    data.write_records(tmp_path / "test.jsonl", records, images)
    lazy = data.LazyImages(data.read_records(tmp_path / "test.jsonl"), tmp_path)
    assert len(lazy) == 3
    assert [lazy[i].tobytes() == images[r.id].tobytes() for i, r in enumerate(records)] == [True] * 3
    assert [im.tobytes() for im in lazy[1:]] == [images[r.id].tobytes() for r in records[1:]]
    with pytest.raises(IndexError):
        lazy[3]
