"""`mini-o3-lite`: run the notebooks as a pipeline, evaluate a checkpoint, export data for scale-out.

    mini-o3-lite run --preset tiny                  # every notebook, in order
    mini-o3-lite run --preset tiny --from 01 --to 02 -p max_turns=8
    mini-o3-lite eval --preset tiny --model sft --n 16 --max-turns 8
    mini-o3-lite eval --preset tiny --model runs/tiny/rl --samples 8 --temperature 1.0
    mini-o3-lite eval --preset full --model-path ~/models/Qwen2.5-VL-7B-Instruct --n 50
    mini-o3-lite export --preset tiny --format all --out exports/tiny

`run` executes each notebook into `runs/<preset>/notebooks/` with its `parameters` cell overridden
(`preset` and any `-p key=value`), and prints a summary table (notebook, status, wall time, and the
key metrics each notebook prints with `manifest.key_metrics`); on failure the table names the
notebook and the cell that failed.
`eval` runs the agent on a split (`evaluate.ensure_eval`, cached in `runs/<preset>/eval/<name>/`) and
prints accuracy by difficulty with the protocol that produced it. `--model` is a checkpoint
directory or one of base, sft, rl, rl_nomask (the tiny preset's shipped checkpoints); `--model-path`
is the preset's own model (a local Qwen2.5-VL or Qwen3-VL directory: what the `full` preset starts
from), and `--set key=value` overrides any preset setting (`--set max_pixels=1000000`).
`export` writes verl parquet + tool config + launch script, LLaMA-Factory sharegpt JSON, or TRL
JSONL (`export.py`) from the preset's dataset and cold-start trajectories.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .manifest import read_key_metrics, repo_root, stage_dir
from .presets import PRESETS

STAGES = ("base", "sft", "rl", "rl_nomask")  # words --model accepts for a stage's checkpoint


def parse_value(text: str):
    """`-p key=value` values: JSON when they parse (numbers, true/false, null, lists), else strings."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def pairs(items: list[str], flag: str) -> dict:
    """`key=value` arguments as a dict of parsed values."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"{flag} expects key=value, got {item!r}")
        out[key] = parse_value(value)
    return out


def preset_from(args: argparse.Namespace):
    """The preset with `--model-path` and `--set` applied (an unknown setting is a one-line error)."""
    from .presets import load_preset

    return load_preset(args.preset, model_path=args.model_path, **pairs(args.set, "--set"))


def notebooks(folder: Path, first: str | None, last: str | None) -> list[Path]:
    found = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    lo, hi = (None if v is None else int(v) for v in (first, last))
    return [nb for nb in found if (lo is None or int(nb.name[:2]) >= lo) and (hi is None or int(nb.name[:2]) <= hi)]


def run(args: argparse.Namespace) -> int:
    import papermill as pm

    params = {"preset": args.preset}
    if args.model_path:
        params["model_path"] = args.model_path
    if args.parameters_file:
        import yaml

        params.update(yaml.safe_load(Path(args.parameters_file).read_text()) or {})
    params.update(pairs(args.param, "-p"))
    out_dir = stage_dir(args.preset, "notebooks")
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = notebooks(repo_root() / "notebooks", args.first, args.last)
    if not todo:
        print("no notebooks to run (notebooks/NN_*.ipynb)")
        return 0
    rows, failed = [], False
    for nb in todo:
        started = time.time()
        status = "ok"
        try:
            pm.execute_notebook(str(nb), str(out_dir / nb.name), parameters=params, cwd=str(nb.parent),
                                kernel_name=args.kernel, progress_bar=False)
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
    return 1 if failed else 0


def model_dir(model: str, preset) -> Path:
    """`--model`: a stage word (tiny: the shipped checkpoint; other presets: `runs/<preset>/<stage>/`) or a
    directory, checked to hold a Qwen2.5-VL checkpoint (else a one-line `ModelPathError` naming the path)."""
    from .modeling import check_checkpoint, model_path, shipped

    if model == "base":
        path = model_path(preset.model_path, preset.name)
    elif model in STAGES:
        path = shipped(model) if preset.name == "tiny" else stage_dir(preset.name, model)
    else:
        path = Path(model)
    return check_checkpoint(path)


def table(rows: list[dict]) -> str:
    """Rows of equal keys as an aligned text table."""
    cols = list(rows[0]) if rows else []
    width = {c: max([len(str(c))] + [len(str(r[c])) for r in rows]) for c in cols}
    lines = ["  ".join(f"{c:>{width[c]}}" for c in cols)]
    lines += ["  ".join(f"{r[c]!s:>{width[c]}}" for c in cols) for r in rows]
    return "\n".join(lines)


def evaluate_cmd(args: argparse.Namespace) -> int:
    from .evaluate import ensure_eval, settings
    from .modeling import ModelPathError

    try:
        preset = preset_from(args)
        path = model_dir(args.model, preset)
    except (ModelPathError, ValueError) as exc:
        print(f"mini-o3-lite eval: error: {exc}", file=sys.stderr)
        return 2
    sampled = args.samples > 1 or args.temperature is not None
    temperature = 1.0 if args.temperature is None else args.temperature  # Mini-o3's Avg@K: T = 1.0
    overrides = {"do_sample": True, "temperature": temperature} if sampled else {}
    config = settings(preset, max_turns=args.max_turns, **overrides)
    label = args.model if args.model in STAGES else path.name
    name = args.name or "-".join(["cli", label, args.split, f"t{config.max_turns}"]
                                 + ([f"n{args.n}"] if args.n else [])
                                 + ([f"k{args.samples}", f"T{temperature:g}"] if sampled else []))
    _, manifest = ensure_eval(preset, path, name, args.split, args.n, config, True, args.samples)
    print(f"\nsummary ({stage_dir(preset.name, 'eval') / name})")
    print(table(manifest["metrics"]["summary"]))
    print("\nprotocol")
    for key, value in manifest["config"]["protocol"].items():
        print(f"  {key}: {value}")
    return 0


def export_cmd(args: argparse.Namespace) -> int:
    from . import export, scenes, teacher

    out = Path(args.out)
    written = []
    try:
        preset = preset_from(args)
        if args.format in ("verl", "all"):
            data_dir, _ = scenes.ensure_dataset(preset, args.split)  # one split, or both
            splits = (args.split,) if args.split else ("train", "test")
            written += export.export_verl(data_dir, out / "verl", splits)
        if args.format in ("sharegpt", "trl", "all"):
            trajectories = args.trajectories or teacher.ensure_coldstart(preset)[0]
            if args.format in ("sharegpt", "all"):
                written += export.export_sharegpt(trajectories, out / "sharegpt")
            if args.format in ("trl", "all"):
                written += export.export_trl(trajectories, out / "trl")
    except ValueError as exc:  # data.DataError and the trajectory reader's errors name file, line and field
        print(f"mini-o3-lite export: error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


def model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-path", metavar="DIR",
                   help="the preset's model: a local Qwen2.5-VL or Qwen3-VL directory (needed by the full preset)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset setting (repeatable), e.g. --set max_pixels=1000000 --set data.canvas=2048")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mini-o3-lite", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="execute the notebooks in order with papermill")
    p.add_argument("--preset", default="tiny", help="preset name passed to every notebook (tiny or full)")
    p.add_argument("--from", dest="first", metavar="NN", help="first notebook number, e.g. 01")
    p.add_argument("--to", dest="last", metavar="NN", help="last notebook number, e.g. 05")
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                   help="override a notebook parameter (repeatable); values are parsed as JSON when possible")
    p.add_argument("--parameters-file", metavar="FILE", help="YAML file of notebook parameters")
    p.add_argument("--kernel", default="python3", help="Jupyter kernel name (default: python3)")
    p.add_argument("--model-path", metavar="DIR", help="the preset's model, passed to every notebook as model_path")
    p.set_defaults(func=run)

    p = sub.add_parser("eval", help="evaluate a checkpoint on a split; prints accuracy by difficulty and the protocol")
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="preset (default: tiny)")
    p.add_argument("--model", default="base", metavar="PATH_OR_STAGE",
                   help=f"checkpoint directory, or one of {', '.join(STAGES)} (tiny: the shipped checkpoints; "
                        "other presets: runs/<preset>/<stage>/; default: base, the preset's model)")
    model_options(p)
    p.add_argument("--split", default="test", choices=("train", "test"), help="split to evaluate (default: test)")
    p.add_argument("--n", type=int, metavar="N", help="first N questions of the split (default: all)")
    p.add_argument("--max-turns", type=int, metavar="T", help="turn budget (default: the preset's max_turns_eval)")
    p.add_argument("--samples", type=int, default=1, metavar="K",
                   help="sampled runs per question, Avg@K (default: 1 = one greedy run)")
    p.add_argument("--temperature", type=float, metavar="T",
                   help="sampling temperature (default 1.0 when --samples > 1); giving it samples even with K=1")
    p.add_argument("--name", help="folder under runs/<preset>/eval/ (default: built from the settings)")
    p.set_defaults(func=evaluate_cmd)

    p = sub.add_parser("export", help="write verl / LLaMA-Factory (sharegpt) / TRL files for scale-out")
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="preset (default: tiny)")
    p.add_argument("--format", required=True, choices=("verl", "sharegpt", "trl", "all"),
                   help="verl: RL parquet + tool config + launch script; sharegpt: LLaMA-Factory SFT JSON; "
                        "trl: TRL messages JSONL; all: the three, each in its own subfolder of --out")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (verl/, sharegpt/, trl/ inside)")
    p.add_argument("--split", choices=("train", "test"), help="verl only: one split (default: both)")
    model_options(p)
    p.add_argument("--trajectories", metavar="PATH",
                   help="cold-start trajectories folder or its trajectories.jsonl (default: runs/<preset>/coldstart/, "
                        "built if missing)")
    p.set_defaults(func=export_cmd)
    args = parser.parse_args(argv)
    if any(v is not None and v < 1 for v in (getattr(args, k, None) for k in ("n", "max_turns", "samples"))):
        parser.error("--n, --max-turns and --samples must be at least 1")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
