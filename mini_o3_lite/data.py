"""The kit's record format (JSONL + PNG files) and loaders for local copies of the real benchmarks.

One `Record` per question, one JSON line per record with sorted keys, images as PNG files under
`images/` next to the JSONL, so the same input always gives byte-identical files (diffable,
cacheable). Every reader reports a bad entry as a `DataError` naming file, line, field and value;
`on_error="skip"` keeps going and lists what it left out in `.skipped`. File-level problems (missing
or empty file, bad TSV header, a file that is not a JSON list) always raise: there is nothing to skip
to. Multiple-choice records keep the option texts in `choices` and the answer as a letter ("A").
Loaders return absolute image paths (benchmarks live outside the kit); `write_records` stores them
relative to the JSONL.

Public formats the loaders read (checked with the search tools; names as released):
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
  `target_object` and `bbox` ([x, y, w, h] pixels; these two names recalled, not seen in a file).
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
import io
import json
import os
import random
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from PIL import Image, ImageOps

SOURCES = ("visualprobe_lite", "visual_probe", "vstar", "hrbench", "mme_realworld")
_SKIP_HINT = "Fix or remove this entry, or pass on_error='skip' to skip bad entries."
_OPTION = re.compile(r"^\(([A-Z])\)\s*(.*)$", re.S)
_LETTERS = "ABCDEFGHIJ"
Rows = Iterable[tuple[int, Any]]  # (line or row number, parsed entry or the DataError that replaced it)


class DataError(ValueError):
    """A bad data file or entry; the message says where (file, line, field), what, and what to do."""

    def __init__(self, file: str | Path, line: int | None, field: str | None, value: Any, reason: str,
                 hint: str = _SKIP_HINT) -> None:
        self.file, self.line, self.field, self.value, self.reason = str(file), line, field, value, reason
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        where = str(file) + (f", line {line}" if line else "") + (f", field '{field}'" if field else "")
        super().__init__(f"{where}: {reason} (value: {shown}). {hint}")


class Skipped(NamedTuple):
    """One entry a reader left out under on_error='skip'."""

    file: str
    line: int | None
    field: str | None
    reason: str


class RecordList(list):
    """A list of records that also carries `.skipped`, the entries left out under on_error='skip'."""

    def __init__(self, items: Iterable[Record] = (), skipped: list[Skipped] | None = None) -> None:
        super().__init__(items)
        self.skipped: list[Skipped] = skipped if skipped is not None else []


@dataclass
class Record:
    """One question about one image; `image` is relative to the JSONL file (absolute from loaders)."""

    id: str
    image: str
    question: str
    answer: str
    choices: list[str] | None = None
    difficulty: str | None = None
    source: str = "visualprobe_lite"
    target_bbox: list[float] | None = None  # relative [x0, y0, x1, y1] in [0, 1]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Any, *, file: str | Path = "<json>", line: int | None = None) -> Record:
        """Check every field (types, bbox range) so bad data fails here, not in the middle of training."""
        if not isinstance(obj, dict):
            raise DataError(file, line, None, obj, f"expected a JSON object, got {type(obj).__name__}")
        unknown = sorted(set(obj) - set(cls.__dataclass_fields__))
        if unknown:
            raise DataError(file, line, unknown[0], obj[unknown[0]], "unknown field",
                            "Put extra information under 'meta'.")
        for key in ("id", "image", "question", "answer"):
            _need(obj, key, str, file, line)
        for key, kind in (("difficulty", str), ("source", str), ("meta", dict), ("choices", list)):
            if obj.get(key) is not None:
                _need(obj, key, kind, file, line)
        if obj.get("choices") is not None and not all(isinstance(c, str) for c in obj["choices"]):
            raise DataError(file, line, "choices", obj["choices"], "every choice must be a string")
        box = obj.get("target_bbox")
        if box is not None and not _valid_box(box):
            raise DataError(file, line, "target_bbox", box,
                            "expected relative [x0, y0, x1, y1] with 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")
        return cls(**{k: v for k, v in obj.items() if not (k in ("source", "meta") and v is None)})

    def image_path(self, root: str | Path | None = None) -> Path:
        path = Path(self.image)
        return path if path.is_absolute() or root is None else Path(root) / path

    def load_image(self, root: str | Path | None = None) -> Image.Image:
        """The image as RGB (what a VLM sees, `read_image`); `root` is the JSONL's folder when the path is relative."""
        return read_image(self.image_path(root), self.id)


def read_image(path: str | Path, question: str | None = None) -> Image.Image:
    """A photo as it is meant to be seen, in RGB: EXIF orientation applied (phones store pictures sideways with a
    rotation tag), greyscale, palette and CMYK converted, transparency flattened onto white. A missing or undecodable
    file is a `DataError` naming it and, when given, the question it belongs to."""
    path, about = Path(path), f"question {question!r}: " if question else ""
    if not path.is_file():
        raise DataError(path, None, None, str(path), f"{about}image file not found",
                        "Check the path and that the images were downloaded and unpacked there.")
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
                rgba = img.convert("RGBA")
                return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
            return img.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(path, None, None, str(path), f"{about}image cannot be decoded ({exc})",
                        "Re-download or regenerate the image.") from None


def open_image(record: Record, root: str | Path | None = None) -> Image.Image:
    return record.load_image(root)


class LazyImages(Sequence):
    """The records' images, each opened when it is asked for: RL samples a few prompts a step, and a
    training split held decoded at once costs 1.5 GB (384 scenes of 1,024 px)."""

    def __init__(self, records: list[Record], root: str | Path | None = None):
        self.records, self.root = records, root

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(f"image {index} of {len(self)} records")
        return open_image(self.records[index], self.root)


def _collect(file: Path, rows: Rows, build: Callable[[int, dict], Record], on_error: str) -> RecordList:
    """Build a record per entry; one entry's DataError raises, or is listed in `.skipped`."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    out = RecordList()
    for number, obj in rows:  # file-level errors raised while iterating propagate on purpose
        try:
            if isinstance(obj, DataError):
                raise obj
            if not isinstance(obj, dict):
                raise DataError(file, number, None, obj, f"expected an object, got {type(obj).__name__}")
            out.append(build(number, obj))
        except DataError as err:
            if on_error == "raise":
                raise
            out.skipped.append(Skipped(err.file, err.line, err.field, err.reason))
    return out


def _valid_box(box: Any) -> bool:
    nums = isinstance(box, list) and len(box) == 4 and all(type(v) in (int, float) for v in box)
    return nums and 0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1


def _need(obj: dict, key: str, kind: type | tuple, file: str | Path, line: int | None) -> Any:
    """obj[key], or a DataError naming the missing or mistyped field."""
    if obj.get(key) is None:
        raise DataError(file, line, key, None, "missing required field")
    if not isinstance(obj[key], kind) or isinstance(obj[key], bool):
        names = "/".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise DataError(file, line, key, obj[key], f"expected {names}, got {type(obj[key]).__name__}")
    return obj[key]


def _letter(value: Any, n: int, file: Path, line: int, key: str) -> str:
    letter = str(value).strip().upper()
    if len(letter) != 1 or letter not in _LETTERS[:n]:
        raise DataError(file, line, key, value, f"answer must be one of the letters {_LETTERS[:n]}")
    return letter


def _verify(source: Path | bytes, file: str | Path, line: int | None, key: str, question: Any) -> None:
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            img.verify()
    except Exception as exc:  # PIL raises many types for broken files
        shown = source[:16] if isinstance(source, bytes) else str(source)
        raise DataError(file, line, key, shown, f"image cannot be decoded (question {question!r}; {exc})",
                        "Re-download or regenerate the image.") from None


def _check_image(path: Path, file: str | Path, line: int | None, key: str, verify: bool, question: Any) -> None:
    if not path.is_file():
        raise DataError(file, line, key, str(path), f"image file not found (question {question!r})",
                        "Check the path and that the images were downloaded and unpacked there.")
    if verify:
        _verify(path, file, line, key, question)


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


# ---------------------------------------------------------------- reading files
def _check_file(path: Path, text: str | None = None) -> None:
    if not path.is_file():
        raise DataError(path, None, None, str(path), "file not found", "Check the path.")
    if path.stat().st_size == 0 or (text is not None and not text.strip()):
        raise DataError(path, None, None, "", "file is empty: no records", "Re-download or regenerate it.")


def _read_text(path: Path) -> str:
    _check_file(path)
    text = path.read_text(encoding="utf-8-sig")
    _check_file(path, text)
    return text


def _iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line, object) per non-blank line; a malformed line yields its DataError instead."""
    for number, raw in enumerate(_read_text(path).splitlines(), start=1):
        if raw.strip():
            try:
                yield number, json.loads(raw)
            except json.JSONDecodeError as exc:
                yield number, DataError(path, number, None, raw, f"malformed JSON ({exc.msg}, col {exc.colno})")


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
    import pyarrow.parquet as pq

    _check_file(path)
    return enumerate((obj for b in pq.ParquetFile(path).iter_batches(batch_size=64) for obj in b.to_pylist()), 1)


# ---------------------------------------------------------------- the kit's own JSONL + PNG files
def save_png(img: Image.Image, path: Path) -> None:
    """PNG with no metadata and a fixed compress level, so equal pixels give equal bytes."""
    if img.mode not in ("L", "LA", "RGB", "RGBA"):
        img = img.convert("RGBA" if "transparency" in img.info or "A" in img.mode else "RGB")
    clean = Image.frombytes(img.mode, img.size, img.tobytes())  # drops info, ICC, EXIF, text chunks
    buf = io.BytesIO()
    clean.save(buf, format="PNG", compress_level=6, optimize=False)
    path.write_bytes(buf.getvalue())


def write_records(path: str | Path, records: Iterable[Record],
                  images: dict[str, Image.Image] | None = None, append: bool = False) -> list[Record]:
    """Write records as JSONL; `images[record.id]`, when given, is saved as `images/<id>.png` beside it.

    `append` adds the records to an existing file (a split written a part at a time); all lines are
    written at once, after the images.
    """
    path, written, names = Path(path), [], {}
    path.parent.mkdir(parents=True, exist_ok=True)
    for rec in records:
        rec = Record(**json.loads(json.dumps(rec.to_json())))  # a deep copy; the caller's stays as it was
        if images is not None and rec.id in images:
            name = re.sub(r"[^A-Za-z0-9._-]", "_", rec.id) + ".png"
            if names.setdefault(name, rec.id) != rec.id:
                raise ValueError(f"ids {names[name]!r} and {rec.id!r} map to the same file images/{name}")
            (path.parent / "images").mkdir(exist_ok=True)
            save_png(images[rec.id], path.parent / "images" / name)
            rec.image = f"images/{name}"
        elif Path(rec.image).is_absolute():
            rec.image = Path(os.path.relpath(rec.image, path.parent.resolve())).as_posix()
        written.append(rec)
    with open(path, "a" if append else "w", encoding="utf-8", newline="\n") as fh:
        fh.writelines(json.dumps(r.to_json(), sort_keys=True, ensure_ascii=False) + "\n" for r in written)
    return written


def read_records(path: str | Path, on_error: str = "raise", verify_images: bool = True) -> RecordList:
    """Read a kit JSONL: every field checked, ids unique, each image present (and decodable)."""
    path, seen = Path(path), {}

    def build(number: int, obj: dict) -> Record:
        rec = Record.from_json(obj, file=path, line=number)
        if rec.id in seen:
            raise DataError(path, number, "id", rec.id, f"duplicate id (first on line {seen[rec.id]})")
        _check_image(rec.image_path(path.parent), path, number, "image", verify_images, rec.id)
        seen[rec.id] = number
        return rec

    return _collect(path, _iter_jsonl(path), build, on_error)


def train_test_split(records: list[Record], test_fraction: float, seed: int) -> tuple[list, list]:
    """Deterministic split of a real benchmark; each side keeps the input order."""
    if not 0 <= test_fraction <= 1:
        raise ValueError(f"test_fraction must be in [0, 1], got {test_fraction}")
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    test = set(order[: round(len(records) * test_fraction)])
    return [r for i, r in enumerate(records) if i not in test], [r for i, r in enumerate(records) if i in test]


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
            if not m or m.group(1) != _LETTERS[i]:
                raise DataError(path, number, "Answer choices", opt, f"expected '({_LETTERS[i]}) ...'")
            choices.append(m.group(2).strip())
        answer = _letter(_need(obj, "Ground truth", str, path, number), len(choices), path, number, "Ground truth")
        _check_image(image, path, number, "Image", verify_images, qid)
        meta = {k.lower(): obj[k] for k in ("Task", "Subtask", "Category", "Dataset") if k in obj}
        return Record(id=str(qid), image=str(image.resolve()), question=question, answer=answer,
                      choices=choices, source="mme_realworld", meta=meta)

    return _collect(path, _json_list_items(path), build, on_error)


# ---------------------------------------------------------------- one entry point
_LOADERS: dict[str, Callable[..., RecordList]] = {
    "records": read_records, "visualprobe_lite": read_records, "visual_probe": load_visual_probe,
    "visualprobe": load_visual_probe, "vstar": load_vstar, "hrbench": load_hrbench,
    "hrbench_4k": load_hrbench, "hrbench_8k": load_hrbench, "mme_realworld": load_mme_realworld,
}


def load_benchmark(name: str, path: str | Path, **kw: Any) -> RecordList:
    """Load any supported format by name: `visual_probe`, `vstar`, `hrbench`, `mme_realworld`, `records`."""
    key = name.lower().replace("-", "_").replace(" ", "_").replace("v*", "vstar")
    if key not in _LOADERS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {sorted(_LOADERS)}")
    return _LOADERS[key](path, **kw)
