"""Stage manifests: every stage writes `runs/<preset>/<stage>/manifest.json` and is reused when it matches.

A notebook that needs an earlier stage calls that stage's build function through `cached_stage`:
if the manifest's config hash matches, the stage is reused at once; otherwise it is (re)built. The
manifest keeps the config, its hash, the seed, the package version, inputs, metrics and wall time,
so every number a notebook shows traces back to how it was made.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import __version__

MANIFEST = "manifest.json"
BUILDING = ".building"  # the config hash of a build in progress, so a resumed build knows its checkpoints are its own


def config_hash(config: Any) -> str:
    """Short stable hash of a JSON-able config (keys sorted)."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


KEY_METRICS = "key metrics: "  # a notebook's headline numbers, printed on one line for `mini-o3-lite run`'s summary


def key_metrics(**values: Any) -> None:
    """Print a notebook's headline numbers as one `key metrics: {json}` line; the batch runner reads it back.

    Returns nothing, so that the notebook's last cell shows that line alone.
    """
    print(KEY_METRICS + json.dumps(values, default=str))


def read_key_metrics(notebook: str | Path) -> dict:
    """The last `key metrics:` line an executed notebook printed ({} when there is none)."""
    import nbformat

    found: dict = {}
    for cell in nbformat.read(str(notebook), as_version=4).cells:
        for output in cell.get("outputs", []):
            for line in output.get("text", "").splitlines() if output.get("output_type") == "stream" else []:
                if line.startswith(KEY_METRICS):
                    found = json.loads(line[len(KEY_METRICS):])
    return found


def read_manifest(folder: str | Path) -> dict | None:
    path = Path(folder) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None


def cached_stage(
    folder: str | Path, config: dict, build: Callable[[Path], dict], inputs: dict | None = None, seed: int = 0,
    shipped: str | Path | None = None,
) -> dict:
    """Run `build(folder) -> metrics` unless `folder` already holds a manifest for the same config.

    Returns the manifest. A stage interrupted before its manifest was written is built again, and
    builders that take long resume from their own checkpoints; a folder left by a different config
    (finished or interrupted) is emptied first, so its checkpoints are never resumed by mistake.
    `shipped`: a folder with a finished copy of the stage (a results file the kit ships); when its manifest
    has the same config hash, its files are copied into `folder` instead of building.
    """
    folder = Path(folder)
    digest = config_hash({"config": config, "inputs": inputs or {}})
    manifest = read_manifest(folder)
    if manifest is not None and manifest.get("config_hash") == digest:
        return manifest
    copy = read_manifest(shipped) if shipped is not None else None
    if copy is not None and copy.get("config_hash") == digest:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(shipped, folder)
        return copy
    marker = folder / BUILDING
    previous = manifest.get("config_hash") if manifest else marker.read_text() if marker.is_file() else digest
    if previous != digest and folder.is_dir():
        shutil.rmtree(folder)  # checkpoints of another config must not be resumed into this one
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)  # a build that crashes must not leave the old manifest valid
    marker.write_text(digest)
    started = time.time()
    metrics = build(folder)
    marker.unlink()
    manifest = {
        "stage": folder.name,
        "config": config,
        "config_hash": digest,
        "seed": seed,
        "package_version": __version__,
        "inputs": inputs or {},
        "metrics": metrics,
        "wall_seconds": round(time.time() - started, 2),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str) + "\n")
    return manifest


def checkout() -> Path | None:
    """The kit's checkout (the folder holding pyproject.toml and the package) around the working directory, if any."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "pyproject.toml").is_file() and (folder / "mini_o3_lite").is_dir():
            return folder
    return None


def repo_root() -> Path:
    """The kit's checkout (the folder holding pyproject.toml), or the working directory."""
    return checkout() or Path.cwd()


def portable(path: str | Path) -> str:
    """`path` as a manifest records it: relative to the checkout when it lies inside it (`runs/tiny/sft`), or
    relative to the package's parent for the package's own files (`mini_o3_lite/assets/tiny-base`, also in an
    installed kit); any other path as given. So a manifest, and the config hash its inputs feed, read the same
    on every machine and in every clone."""
    resolved = Path(path).expanduser().resolve()
    package = Path(__file__).resolve().parent
    for root, inside in ((checkout(), None), (package.parent, package)):
        if root is None or (inside is not None and not resolved.is_relative_to(inside)):
            continue
        if resolved.is_relative_to(root.resolve()):
            return resolved.relative_to(root.resolve()).as_posix()
    return str(path)


def stage_dir(preset: str, stage: str) -> Path:
    """`runs/<preset>/<stage>/` under the checkout, whether called from a notebook or the shell."""
    return repo_root() / "runs" / preset / stage
