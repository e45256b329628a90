"""Running the notebooks as a pipeline with papermill: what `mini-o3-lite run` does once its inputs are checked.

Each notebook runs with its `parameters` cell overridden; a parameter that no notebook to run declares
is refused before anything runs (papermill would silently ignore a misspelt name). The summary table
reads the key metrics each notebook prints with `manifest.key_metrics`.
"""

from __future__ import annotations

import ast
import difflib
import time
from pathlib import Path

import nbformat
import papermill as pm

from .manifest import read_key_metrics
from .presets import load_preset


def notebooks(folder: Path, first: str | None, last: str | None) -> list[Path]:
    """The `NN_*.ipynb` notebooks of `folder` numbered from `first` to `last` (inclusive), in order."""
    found = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    lo, hi = (None if v is None else int(v) for v in (first, last))
    return [nb for nb in found if (lo is None or int(nb.name[:2]) >= lo) and (hi is None or int(nb.name[:2]) <= hi)]


def notebook_parameters(notebook: Path) -> set[str]:
    """The names a notebook's `parameters` cell assigns: what papermill can set in it."""
    for cell in nbformat.read(str(notebook), as_version=4).cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            body = ast.parse(cell.source).body
            return {t.id for node in body if isinstance(node, ast.Assign | ast.AnnAssign)
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                    if isinstance(t, ast.Name)}
    return set()


def check_parameters(params: dict, preset: str, todo: list[Path]) -> None:
    """Every parameter given with -p or in the parameters file must be one a notebook to run declares, and
    `overrides` settings of the preset. A one-line ValueError otherwise: papermill would ignore a misspelt name."""
    known = set().union(*(notebook_parameters(nb) for nb in todo))
    for key in sorted(params):
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"the notebooks' parameters: {', '.join(sorted(known))}"
            raise ValueError(f"unknown notebook parameter {key!r} (in no parameters cell of {todo[0].name} .. "
                             f"{todo[-1].name}); {hint}")
    overrides = params.get("overrides")
    if overrides is not None and not isinstance(overrides, dict):
        raise ValueError(f"parameter 'overrides' must be a dict of preset settings, got {overrides!r}")
    load_preset(preset, **(overrides or {}))


def execute(todo: list[Path], out_dir: Path, params: dict, kernel: str | None) -> bool:
    """Run the notebooks in order into `out_dir`, stopping at the first failure; print a summary table.

    Returns True when every notebook ran; a failure's row names the cell that failed.
    """
    rows, failed = [], False
    for nb in todo:
        started = time.time()
        status = "ok"
        try:
            pm.execute_notebook(str(nb), str(out_dir / nb.name), parameters=params, cwd=str(nb.parent),
                                kernel_name=kernel, progress_bar=False)
        except pm.PapermillExecutionError as exc:
            status, failed = f"FAILED in cell {exc.exec_count}: {exc.ename}: {exc.evalue}"[:160], True
        executed = out_dir / nb.name
        metrics = read_key_metrics(executed) if executed.is_file() else {}
        rows.append((nb.name, status, time.time() - started, ", ".join(f"{k} {v}" for k, v in metrics.items())))
        print(f"{nb.name:<40} {status:<10} {rows[-1][2]:7.1f} s", flush=True)
        if failed:
            break
    print("\nsummary")
    print(f"{'notebook':<40} {'wall time':>10}  {'status':<6}  key metrics")
    for name, status, seconds, metrics in rows:
        print(f"{name:<40} {seconds:9.1f}s  {status:<6}  {metrics}")
    print(f"{'total':<40} {sum(r[2] for r in rows):9.1f}s  outputs in {out_dir}")
    return not failed
