"""Readers of the paper's benchmarks as released: Visual Probe, V* Bench, HR-Bench and MME-RealWorld.

Each loader reads a benchmark's released files into the kit's `Record`s (`data.py`), so every stage that
evaluates reads a real benchmark the way it reads the kit's own JSONL. Errors follow `data.py`'s rules: a bad
entry is a `DataError` naming file, line and field (listed in `.skipped` under `on_error="skip"`); a bad file
always raises. Multiple-choice records keep the option texts in `choices` and the answer as a letter ("A").
Loaders return absolute image paths (benchmarks live outside the kit); `data.write_records` stores them
relative to the JSONL. Which loader reads which benchmark, and how its questions are asked and grouped, is
`benchmarks.BENCHMARKS`.

The formats as released (names as in the released files):
- Visual Probe (HF `Mini-o3/VisualProbe_{train,Easy,Medium,Hard}`): `train.json` / `val.json`, a
  JSON list of {`images`: [path], `problem`: "<image>\\n" + question, `solution`, `data_source`,
  `doc_id`}, pictures under `data/` (`data/visual_probe_easy_0.jpg`). The official run script reads
  `${BASE_IMAGE_DIR}/VisualProbe_Easy/val.json`; image paths are tried against the JSON's folder,
  then its parent (third-party preprocessing passes that parent as the image root).
- V* Bench (HF `craigwu/vstar_bench`): `test_questions.jsonl` with `image`
  ("direct_attributes/sa_4690.jpg"), `text` (question, "(A) ..." lines, an instruction), `category`,
  `question_id`, `label` (letter); the images sit in `direct_attributes/` (115) and
  `relative_position/` (76), each with a same-stem JSON holding `question` and `options` (correct
  first: the official `vstar_bench_eval.py` scores index 0) and, read here only for boxes,
  `target_object` and `bbox` ([x, y, w, h] pixels; these two names are not confirmed against a released
  file, so a JSON without them simply gives no box).
- HR-Bench (HF `DreamMr/HR-Bench`): `hr_bench_4k.tsv`, `hr_bench_8k.tsv` (also `.parquet`), columns
  `index, question, answer, category, A, B, C, D, cycle_category, image` (base64 JPEG; VLMEvalKit
  TSVs may put another row's index in `image` to reuse that row's picture).
- MME-RealWorld (HF `yifanzhang114/MME-RealWorld`; GitHub `yfzhang114/MME-RealWorld`,
  `evaluation/output_test_template.json`): `MME_RealWorld.json`, a JSON list of {`Question_id`,
  `Image` (path under the unpacked image folder), `Text`, `Answer choices` ["(A) ...", ...],
  `Ground truth` (letter), `Task`, `Subtask`, `Category`, `Question Type`, sometimes `Dataset`}.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from .data import (
    DataError,
    Record,
    RecordList,
    Rows,
    _check_file,
    _check_image,
    _collect,
    _iter_jsonl,
    _need,
    _read_text,
    _verify,
)

LETTERS = "ABCDEFGHIJ"  # option letters, in order
_OPTION = re.compile(r"^\(([A-Z])\)\s*(.*)$", re.S)


def _letter(value: Any, n: int, file: Path, line: int, key: str) -> str:
    letter = str(value).strip().upper()
    if len(letter) != 1 or letter not in LETTERS[:n]:
        raise DataError(file, line, key, value, f"answer must be one of the letters {LETTERS[:n]}")
    return letter


def _store_bytes(data: bytes, folder: Path, file: Path, line: int, key: str, verify: bool, question: Any) -> Path:
    """Write embedded image bytes, unchanged, into a cache folder, named by content so repeats share a file."""
    if verify:
        _verify(data, file, line, key, question)
    ext = ".jpg" if data[:2] == b"\xff\xd8" else ".png" if data[:4] == b"\x89PNG" else ".img"
    target = folder / (hashlib.sha256(data).hexdigest()[:20] + ext)
    if not (target.is_file() and target.stat().st_size == len(data)):
        folder.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return target


def _json_list_items(path: Path) -> list[tuple[int, Any]]:
    """Items of a JSON-list file with the line each starts on, so errors can name a line."""
    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(path, exc.lineno, None, (text.splitlines() + [""])[exc.lineno - 1],
                        f"malformed JSON ({exc.msg}, col {exc.colno})",
                        "The file must be one valid JSON list; fix the syntax there.") from None
    if not isinstance(data, list):
        raise DataError(path, 1, None, type(data).__name__, "expected a JSON list of questions",
                        "Point the loader at the released question file.")
    decoder, gap, items, pos = json.JSONDecoder(), re.compile(r"[\s,]*"), [], text.index("[") + 1
    for _ in data:
        pos = gap.match(text, pos).end()
        obj, end = decoder.raw_decode(text, pos)
        items.append((text.count("\n", 0, pos) + 1, obj))
        pos = end
    return items


def _iter_parquet(path: Path) -> Rows:
    import pyarrow.parquet as pq  # deferred: pyarrow is heavy, and only parquet copies need it

    _check_file(path)
    return enumerate((obj for b in pq.ParquetFile(path).iter_batches(batch_size=64) for obj in b.to_pylist()), 1)


# ---------------------------------------------------------------- Visual Probe
def load_visual_probe(path: str | Path, *, image_root: str | Path | None = None, difficulty: str | None = None,
                      on_error: str = "raise", verify_images: bool = True) -> RecordList:
    """Visual Probe as released: `train.json`/`val.json` (or .jsonl/.parquet), or a folder holding them."""
    path = Path(path)
    files = sorted(p for e in ("json", "jsonl", "parquet") for p in path.rglob(f"*.{e}")) if path.is_dir() else [path]
    if not files:
        raise DataError(path, None, None, str(path), "no .json/.jsonl/.parquet question file here", "Check the path.")
    out = RecordList()
    for file in files:
        def build(number: int, obj: dict, file: Path = file) -> Record:
            images, problem = _need(obj, "images", list, file, number), _need(obj, "problem", str, file, number)
            answer = _need(obj, "solution", (str, int, float), file, number)
            source, doc_id = str(obj.get("data_source") or ""), obj.get("doc_id", number)
            found = re.search(r"(easy|medium|hard)", f"{source} {file.parent.name} {file.stem}".lower())
            level = difficulty or obj.get("difficulty") or (found.group(1) if found else None)
            first = images[0] if images else None
            if isinstance(first, dict) and first.get("bytes"):  # parquet exports embed the picture
                img = _store_bytes(first["bytes"], file.parent / f"{file.stem}_images", file, number, "images",
                                   verify_images, doc_id)
            else:
                rel = first.get("path") if isinstance(first, dict) else first
                if not isinstance(rel, str):
                    raise DataError(file, number, "images", images, "expected a list of image paths")
                tried = [r / rel for r in ([Path(image_root)] if image_root else [file.parent, file.parent.parent])]
                img = next((p for p in tried if p.is_file()), tried[0])
                _check_image(img, file, number, "images", verify_images, doc_id)
            return Record(id=f"{level or file.stem}-{doc_id}", image=str(img.resolve()),
                          question=problem.replace("<image>", "").strip(), answer=str(answer), difficulty=level,
                          source="visual_probe", meta={"doc_id": doc_id, "data_source": source})

        rows = {".jsonl": _iter_jsonl, ".parquet": _iter_parquet}.get(file.suffix, _json_list_items)(file)
        part = _collect(file, rows, build, on_error)
        out.extend(part)
        out.skipped.extend(part.skipped)
    return out


# ---------------------------------------------------------------- V* Bench
def _vstar_boxes(image: Path) -> tuple[Any, list[list[float]]]:
    """Target names and boxes from the same-stem JSON (absent or broken: none); [x, y, w, h] px -> relative."""
    try:
        ann = json.loads(image.with_suffix(".json").read_text(encoding="utf-8"))
        with Image.open(image) as img:
            w, h = img.size
        boxes = [[round(v, 6) for v in (max(0, x / w), max(0, y / h), min(1, (x + bw) / w), min(1, (y + bh) / h))]
                 for x, y, bw, bh in ann.get("bbox") or []]
        return ann.get("target_object"), boxes
    except (OSError, ValueError, TypeError, AttributeError):
        return None, []


def load_vstar(root: str | Path, *, on_error: str = "raise", verify_images: bool = True) -> RecordList:
    """V* Bench from `test_questions.jsonl` (official option order and labels) plus the per-image JSONs' boxes."""
    root = Path(root)
    jsonl = root / "test_questions.jsonl"
    if not jsonl.is_file():
        raise DataError(root, None, None, str(jsonl), "no test_questions.jsonl in this folder",
                        "Point at the vstar_bench folder; download test_questions.jsonl if it is missing.")

    def build(number: int, obj: dict) -> Record:
        rel, text = _need(obj, "image", str, jsonl, number), _need(obj, "text", str, jsonl, number)
        qid = str(_need(obj, "question_id", (str, int), jsonl, number))
        lines = text.split("\n")
        where = [i for i, s in enumerate(lines) if _OPTION.match(s.strip())]
        if not where:
            raise DataError(jsonl, number, "text", text, "no '(A) ...' option lines in the question")
        choices = [_OPTION.match(lines[i].strip()).group(2) for i in where]
        answer = _letter(_need(obj, "label", str, jsonl, number), len(choices), jsonl, number, "label")
        _check_image(root / rel, jsonl, number, "image", verify_images, obj["question_id"])
        target, boxes = _vstar_boxes(root / rel)
        meta = {"category": obj.get("category", Path(rel).parent.name), "question_id": obj["question_id"],
                "prompt": text, "target_object": target, "target_bboxes": boxes}
        question = "\n".join(lines[: where[0]]).strip()
        return Record(id=f"vstar-{qid}", image=str((root / rel).resolve()), question=question, answer=answer,
                      choices=choices, source="vstar",
                      target_bbox=boxes[0] if len(boxes) == 1 else None, meta=meta)

    return _collect(jsonl, _iter_jsonl(jsonl), build, on_error)


# ---------------------------------------------------------------- HR-Bench
_HR_COLUMNS = ("index", "question", "answer", "A", "B", "C", "D", "image")


def _iter_tsv(path: Path) -> Iterator[tuple[int, Any]]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # an 8K image is tens of MB of base64 in one cell
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None) or []
        missing = [c for c in _HR_COLUMNS if c not in header]
        if missing:
            raise DataError(path, 1, missing[0], header, f"header lacks column(s) {missing}",
                            f"An HR-Bench TSV needs the columns {list(_HR_COLUMNS)}; is this the right file?")
        for cells in reader:
            if len(cells) != len(header):
                yield reader.line_num, DataError(path, reader.line_num, None, cells[:3],
                                                 f"{len(cells)} cells where the header has {len(header)}")
            elif cells:
                yield reader.line_num, dict(zip(header, cells, strict=True))


def load_hrbench(path: str | Path, *, cache_dir: str | Path | None = None, on_error: str = "raise",
                 verify_images: bool = True) -> RecordList:
    """HR-Bench TSV (or parquet); base64 images are written once, unchanged, into `<stem>_images/`."""
    path = Path(path)
    _check_file(path)  # size only: an 8K TSV is gigabytes
    cache, by_index = Path(cache_dir) if cache_dir else path.parent / f"{path.stem}_images", {}

    def build(number: int, obj: dict) -> Record:
        for col in _HR_COLUMNS:
            if obj.get(col) is None or obj.get(col) == "":
                raise DataError(path, number, col, obj.get(col), "missing value")
        index, blob = str(obj["index"]), str(obj["image"])
        if len(blob) <= 64 and blob.isdigit():  # VLMEvalKit convention: the image of another row
            if blob not in by_index:
                raise DataError(path, number, "image", blob, "refers to a row index with no image before it")
            image = by_index[blob]
        else:
            try:
                data = base64.b64decode(blob, validate=True)
            except (binascii.Error, ValueError):
                raise DataError(path, number, "image", blob, "not valid base64", "Re-download it.") from None
            image = _store_bytes(data, cache, path, number, "image", verify_images, obj["index"])
        by_index[index] = image
        return Record(id=f"{path.stem}-{index}", image=str(image.resolve()), question=str(obj["question"]),
                      answer=_letter(obj["answer"], 4, path, number, "answer"),
                      choices=[str(obj[c]) for c in "ABCD"], source="hrbench",
                      meta={"index": obj["index"], "category": obj.get("category"),
                            "cycle_category": obj.get("cycle_category"), "file": path.name})

    return _collect(path, _iter_parquet(path) if path.suffix == ".parquet" else _iter_tsv(path), build, on_error)


# ---------------------------------------------------------------- MME-RealWorld
def load_mme_realworld(json_path: str | Path, image_root: str | Path | None = None, *,
                       on_error: str = "raise", verify_images: bool = True) -> RecordList:
    """MME-RealWorld's `MME_RealWorld.json`; `image_root` is where the image archives were unpacked."""
    path = Path(json_path)
    root = Path(image_root) if image_root else path.parent

    def build(number: int, obj: dict) -> Record:
        qid = _need(obj, "Question_id", (str, int), path, number)
        image = root / _need(obj, "Image", str, path, number)
        question, raw = _need(obj, "Text", str, path, number), _need(obj, "Answer choices", list, path, number)
        choices = []
        for i, opt in enumerate(raw):
            m = _OPTION.match(opt.strip()) if isinstance(opt, str) else None
            if not m or m.group(1) != LETTERS[i]:
                raise DataError(path, number, "Answer choices", opt, f"expected '({LETTERS[i]}) ...'")
            choices.append(m.group(2).strip())
        answer = _letter(_need(obj, "Ground truth", str, path, number), len(choices), path, number, "Ground truth")
        _check_image(image, path, number, "Image", verify_images, qid)
        meta = {k.lower(): obj[k] for k in ("Task", "Subtask", "Category", "Dataset") if k in obj}
        return Record(id=str(qid), image=str(image.resolve()), question=question, answer=answer,
                      choices=choices, source="mme_realworld", meta=meta)

    return _collect(path, _json_list_items(path), build, on_error)
