"""The kit's record format: one `Record` per question, stored as JSONL + PNG files, and the readers' error rules.

One JSON line per record with sorted keys, images as PNG files under `images/` next to the JSONL, so
the same input always gives byte-identical files (diffable, cacheable). Every reader, here and in
`benchmark_files.py` (the real benchmarks as released), reports a bad entry as a `DataError` naming
file, line, field and value; `on_error="skip"` keeps going and lists what it left out in `.skipped`.
File-level problems (missing or empty file, bad TSV header, a file that is not a JSON list) always
raise: there is nothing to skip to. The helpers those readers share (`_collect`, `_need`,
`_check_image`, `_iter_jsonl`, ...) live here with the rules they apply. Multiple-choice records keep
the option texts in `choices` and the answer as a letter ("A"). Images are opened as a VLM sees them
(`read_image`), one at a time when a split is long (`LazyImages`).
"""

from __future__ import annotations

import io
import json
import os
import random
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from PIL import Image, ImageOps

_SKIP_HINT = "Fix or remove this entry, or pass on_error='skip' to skip bad entries."
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
    training split held decoded at once costs 3 bytes a pixel of every scene (1.2 GB for 384 scenes of 1,024 px)."""

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


# ---------------------------------------------------------------- the kit's own JSONL + PNG files
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


