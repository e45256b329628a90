"""`mini-o3-lite`: run the notebooks as a pipeline, evaluate a checkpoint, ask it one question, export data.

    mini-o3-lite run --preset tiny                  # every notebook, in order
    mini-o3-lite run --preset tiny --from 01 --to 02 -p max_turns=8
    mini-o3-lite eval --preset tiny --model sft --n 16 --max-turns 8
    mini-o3-lite eval --preset tiny --model runs/tiny/rl --samples 8 --temperature 1.0
    mini-o3-lite eval --preset full --model-path ~/models/Qwen2.5-VL-7B-Instruct --n 50
    mini-o3-lite eval --preset full --model-path ~/models/Mini-o3-7B-v1 --benchmark vstar --data ~/data/vstar_bench \
        --samples 32 --max-turns 12
    mini-o3-lite ask --model sft --image photo.jpg --question "What colour is the small square?"
    mini-o3-lite export --preset tiny --format all --out exports/tiny

`run` executes each notebook into `runs/<preset>/notebooks/` with its `parameters` cell overridden
(`preset` and any `-p key=value`), and prints a summary table (notebook, status, wall time, and the
key metrics each notebook prints with `manifest.key_metrics`); on failure the table names the
notebook and the cell that failed. A parameter no notebook's `parameters` cell has, an unknown preset
or setting, a missing checkpoint or an unwritable output folder stops it before anything runs.
`eval` runs the agent on a split (`evaluate.ensure_eval`, cached in `runs/<preset>/eval/<name>/`), or on
a local copy of one of the paper's benchmarks (`--benchmark NAME --data DIR`, `benchmarks.py`), and
prints accuracy by difficulty (benchmarks: by their categories, beside Mini-o3's number) with the
protocol that produced it. `--model` is a checkpoint directory or one of base, sft, rl, rl_nomask
(the tiny preset's shipped checkpoints); `--model-path` is the preset's own model (a local Qwen2.5-VL
or Qwen3-VL directory: what the `full` preset starts from), and `--set key=value` overrides any preset
setting (`--set max_pixels=1000000`).
`ask` runs one search on one image and prints each turn; the zoom-in images and a picture of the
search go to `--out` (`ask.py`).
`export` writes verl parquet + tool config + launch script, LLaMA-Factory sharegpt JSON, or TRL
JSONL (`export.py`) from the preset's dataset and cold-start trajectories.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import time
from pathlib import Path

from .benchmarks import BENCHMARKS
from .manifest import read_key_metrics, repo_root, stage_dir
from .presets import PRESETS, STAGES



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


def fail(command: str, problem: object) -> int:
    """A bad input: one line on stderr naming it, exit status 2 (argparse's for a usage error)."""
    print(f"mini-o3-lite {command}: error: {problem}", file=sys.stderr)
    return 2


def writable(folder: str | Path) -> Path:
    """`folder`, created if needed and checked to take a file; else a one-line ValueError naming it."""
    folder = Path(folder).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"cannot write to {str(folder)!r} ({exc.strerror or exc})") from None
    return folder


def notebook_parameters(notebook: Path) -> set[str]:
    """The names a notebook's `parameters` cell assigns: what papermill can set in it."""
    import ast

    import nbformat

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
    from .presets import load_preset

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


def run(args: argparse.Namespace) -> int:
    import papermill as pm

    from .modeling import ModelPathError, check_checkpoint

    asked = {}  # the notebook parameters the user set, checked against the notebooks' parameters cells
    if args.parameters_file:
        import yaml

        asked.update(yaml.safe_load(Path(args.parameters_file).read_text()) or {})
    asked.update(pairs(args.param, "-p"))
    params = {"preset": args.preset} | ({"model_path": args.model_path} if args.model_path else {}) | asked
    if params["preset"] not in PRESETS:
        return fail("run", f"unknown preset {params['preset']!r}; choose one of: {', '.join(PRESETS)}")
    try:
        out_dir = writable(stage_dir(params["preset"], "notebooks"))
    except ValueError as exc:
        return fail("run", exc)
    todo = notebooks(repo_root() / "notebooks", args.first, args.last)
    if not todo:
        print("no notebooks to run (notebooks/NN_*.ipynb)")
        return 0
    try:
        check_parameters(asked, params["preset"], todo)
        if params.get("model_path") is not None:
            check_checkpoint(params["model_path"])
    except (ModelPathError, ValueError) as exc:
        return fail("run", exc)
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
    from .modeling import check_checkpoint
    from .stages import checkpoint

    return check_checkpoint(checkpoint(preset, model, build=False))


def table(rows: list[dict]) -> str:
    """Rows of equal keys as an aligned text table."""
    cols = list(rows[0]) if rows else []
    width = {c: max([len(str(c))] + [len(str(r[c])) for r in rows]) for c in cols}
    lines = ["  ".join(f"{c:>{width[c]}}" for c in cols)]
    lines += ["  ".join(f"{r[c]!s:>{width[c]}}" for c in cols) for r in rows]
    return "\n".join(lines)


def evaluate_cmd(args: argparse.Namespace) -> int:
    from .benchmarks import question_files
    from .evaluate import ensure_eval, settings
    from .modeling import ModelPathError, check_checkpoint

    try:
        preset = preset_from(args)
        path = model_dir(args.model, preset)
        judge = check_checkpoint(args.judge) if args.judge else None
        if args.benchmark:
            question_files(BENCHMARKS[args.benchmark], args.data)
        writable(stage_dir(preset.name, "eval"))
    except (ModelPathError, ValueError) as exc:  # data.DataError is a ValueError
        return fail("eval", exc)
    sampled = args.samples > 1 or args.temperature is not None
    temperature = 1.0 if args.temperature is None else args.temperature  # Mini-o3's Avg@K: T = 1.0
    overrides = {"do_sample": True, "temperature": temperature} if sampled else {}
    config = settings(preset, max_turns=args.max_turns, **overrides)
    label = args.model if args.model in STAGES else path.name
    name = args.name or "-".join(["cli", label, args.benchmark or args.split, f"t{config.max_turns}"]
                                 + ([f"n{args.n}"] if args.n else [])
                                 + ([f"k{args.samples}", f"T{temperature:g}"] if sampled else [])
                                 + ([f"judge-{judge.name}"] if judge else []))
    if args.benchmark:
        from .data import DataError

        try:
            manifest = benchmark_eval(args, preset, path, name, config, judge)
        except DataError as exc:  # a bad entry or image, named with its file and question
            return fail("eval", exc)
    else:
        _, manifest = ensure_eval(preset, path, name, args.split, args.n, config, True, args.samples)
        print(f"\nsummary ({stage_dir(preset.name, 'eval') / name})")
        print(table(manifest["metrics"]["summary"]))
    print("\nprotocol")
    for key, value in manifest["config"]["protocol"].items():
        print(f"  {key}: {value}")
    return 0


def benchmark_eval(args: argparse.Namespace, preset, path: Path, name: str, config, judge: Path | None) -> dict:
    """`eval --benchmark`: the run, the entries skipped, the table per category beside Mini-o3's; the manifest."""
    from .benchmarks import ensure_benchmark_eval, get, paper_numbers
    from .evaluate import local_judge
    from .modeling import load_for

    generate = local_judge(*load_for(preset, judge)) if judge else None
    _, manifest = ensure_benchmark_eval(preset, path, args.benchmark, args.data, name, args.n, config, args.samples,
                                        generate, judge and judge.name, args.on_error)
    for skip in manifest["inputs"]["skipped"]:
        print(f"skipped: {skip['file']}, line {skip['line']}, field {skip['field']}: {skip['reason']}")
    print(f"\n{get(args.benchmark).title} ({stage_dir(preset.name, 'eval') / name})")
    print(table(manifest["metrics"]["summary"]))
    paper = paper_numbers(args.benchmark)
    if paper:
        print("\nMini-o3 in the paper (Avg@32 at T=1.0, GPT-4o judge; accuracy %): "
              + ", ".join(f"{k} {v}" for k, v in paper.items()))
    return manifest


def export_cmd(args: argparse.Namespace) -> int:
    from . import export, scenes, teacher

    written = []
    try:
        preset = preset_from(args)
        out = writable(args.out)
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
        return fail("export", exc)
    for path in written:
        print(path)
    return 0


def ask_cmd(args: argparse.Namespace) -> int:
    from .ask import ask, turn_lines, write_report
    from .data import read_image
    from .evaluate import settings
    from .modeling import ModelPathError, load_for

    try:
        preset = preset_from(args)
        image = read_image(args.image)
        path = model_dir(args.model, preset)
        out = writable(args.out or stage_dir(preset.name, "ask") / Path(args.image).stem)
    except (ModelPathError, ValueError) as exc:  # data.DataError is a ValueError
        return fail("ask", exc)
    model, processor = load_for(preset, path)
    sampled = {"do_sample": True, "temperature": args.temperature} if args.temperature is not None else {}
    config = settings(preset, max_turns=args.max_turns, **sampled)
    traj = ask(model, processor, image, args.question, config, args.choices)
    print("\n".join(turn_lines(traj)))
    print(f"\nwritten to {out}:")
    for written in write_report(traj, out, preset.min_pixels, preset.max_pixels):
        print(f"  {written.name}")
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
    p.add_argument("--benchmark", choices=list(BENCHMARKS),
                   help="evaluate on a local copy of one of the paper's benchmarks instead of the preset's split "
                        "(needs --data)")
    p.add_argument("--data", metavar="PATH",
                   help="the benchmark's folder as released (or its question file), e.g. data/vstar_bench")
    p.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                   help="a bad benchmark entry or image: stop with its file and question (raise, default), or leave it "
                        "out and list it (skip)")
    p.add_argument("--judge", metavar="DIR",
                   help="a local Qwen2.5-VL/Qwen3-VL checkpoint that judges the answers (scoring.JUDGE_PROMPT) "
                        "instead of the rule-based scorer")
    p.set_defaults(func=evaluate_cmd)

    p = sub.add_parser("ask", help="one search on one image: prints each turn, saves the zooms and a picture")
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="preset (default: tiny)")
    p.add_argument("--model", default="base", metavar="PATH_OR_STAGE",
                   help=f"checkpoint directory, or one of {', '.join(STAGES)} (default: base, the preset's model)")
    model_options(p)
    p.add_argument("--image", required=True, metavar="PATH", help="a JPEG or PNG of any size")
    p.add_argument("--question", required=True, metavar="TEXT", help="the question about the image")
    p.add_argument("--choices", nargs="+", metavar="OPTION", help="options of a multiple-choice question")
    p.add_argument("--max-turns", type=int, metavar="T", help="turn budget (default: the preset's max_turns_eval)")
    p.add_argument("--temperature", type=float, metavar="T", help="sample at this temperature (default: greedy)")
    p.add_argument("--out", metavar="DIR",
                   help="folder for the zoom pictures and the trajectory (default: runs/<preset>/ask/<image name>/)")
    p.set_defaults(func=ask_cmd)

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
    if any(v is not None and not v.isdigit() for v in (getattr(args, k, None) for k in ("first", "last"))):
        parser.error("--from and --to take a notebook number, e.g. 01")
    if args.command == "eval" and (args.benchmark is None) != (args.data is None):
        parser.error("--benchmark and --data go together: the benchmark's name and its local folder")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
