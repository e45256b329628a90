"""`mini-o3-lite`: run the notebooks as a pipeline, evaluate a checkpoint, ask it one question, export data.

    mini-o3-lite run --preset tiny                  # every notebook, in order
    mini-o3-lite run --preset tiny --from 01 --to 02 -p max_turns=8
    mini-o3-lite eval --preset tiny --model sft --n 16 --max-turns 8
    mini-o3-lite eval --preset tiny --model runs/tiny/rl/model --samples 8 --temperature 1.0
    mini-o3-lite eval --preset full --model-path ~/models/Qwen2.5-VL-7B-Instruct --n 50
    mini-o3-lite eval --preset full --model-path ~/models/Mini-o3-7B-v1 --benchmark vstar --data ~/data/vstar_bench \
        --samples 32 --max-turns 12
    mini-o3-lite ask --model sft --image photo.jpg --question "What colour is the small square?"
    mini-o3-lite compare --models sft rl rl_nomask --n 384 --samples 8 --out rl-comparison.json
    mini-o3-lite export --preset tiny --format all --out exports/tiny
    mini-o3-lite pretrain --out runs/tiny/base --set base.steps=100      # resumes from runs/tiny/base/checkpoint
    mini-o3-lite release --model runs/tiny/base --ship runs/tiny/my-base --findings notes.md
    mini-o3-lite ship-evals SFT_32turns RL_masked_32turns   # notebooks read these copies instead of computing

Each command's `--help` says what it takes. `run` executes the notebooks with papermill (`runner.py`) and
prints a table of their key metrics; `eval` runs the agent on a split or on a local copy of one of the
paper's benchmarks (`evaluate.py`, `benchmarks.py`); `compare` pairs agents on the same held-out questions
(`comparison.py`); `ask` runs one search on one image (`ask.py`); `export` writes verl, LLaMA-Factory and
TRL files (`export.py`); `pretrain` and `release` train and ship the tiny base (`pretrain.py`,
`release.py`). A stage word (base, sft, rl, rl_nomask, rl_drop) names a checkpoint (`stages.py`);
`--model-path` is the preset's own model (a local Qwen2.5-VL or Qwen3-VL directory) and `--set key=value`
overrides any preset setting. A bad input (unknown parameter, preset or setting, missing checkpoint,
unwritable folder) stops a command before anything runs, with one line naming it and exit status 2.
The parsers of nine commands make this module about 400 lines; what each command does lives in the module it names.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from .benchmarks import BENCHMARKS
from .manifest import repo_root, stage_dir
from .presets import PRESETS, STAGES, load_preset

# The package's modules that load torch and transformers are imported inside the command that needs them:
# `--help` and the input checks answer at once.


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
    return load_preset(args.preset, model_path=args.model_path, **pairs(args.set, "--set"))


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


def run(args: argparse.Namespace) -> int:
    from .modeling import ModelPathError, check_checkpoint
    from .runner import check_parameters, execute, notebooks

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
    return 0 if execute(todo, out_dir, params, args.kernel) else 1


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
        if judge and not args.benchmark:
            raise ValueError("--judge scores a benchmark's answers: give --benchmark NAME --data DIR with it "
                             "(the kit's own scenes are scored exactly by the rules)")
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


def compare_cmd(args: argparse.Namespace) -> int:
    from .comparison import compare
    from .modeling import ModelPathError

    try:
        preset = preset_from(args)
        models = {label: model_dir(label, preset) for label in args.models}
        if args.out:
            writable(Path(args.out).parent)
    except (ModelPathError, ValueError) as exc:
        return fail("compare", exc)
    result = compare(preset, models, args.n, args.max_turns, args.samples, out=args.out,
                     command=shlex.join(["mini-o3-lite", *args.argv]))
    for name, run in result["protocols"].items():
        print(f"\n{name}, {args.n} questions, {args.max_turns} turns")
        print(table([{"model": m, "accuracy": r["accuracy"]["mean"], "se": r["accuracy"]["se"],
                      "turns": r["turns"]["mean"], "exceeded": r["exceeded"]} for m, r in run["models"].items()]))
        print(table([{"difference": k, "mean": v["mean"], "paired se": v["se"], "z": v["z"]}
                     for k, v in run["paired"].items()]))
    return 0


def export_cmd(args: argparse.Namespace) -> int:
    from . import dataset, export, teacher

    written = []
    try:
        preset = preset_from(args)
        out = writable(args.out)
        if args.format in ("verl", "all"):
            data_dir, _ = dataset.ensure_dataset(preset, args.split)  # one split, or both
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


def pretrain_cmd(args: argparse.Namespace) -> int:
    from .modeling import ModelPathError, check_checkpoint
    from .pretrain import train  # torch and transformers: imported when a command needs them, as above

    try:
        preset = preset_from(args)
        for given in filter(None, (args.init, args.vision_from)):
            check_checkpoint(given)
        out = writable(args.out or stage_dir(preset.name, "base"))
    except (ModelPathError, ValueError) as exc:
        return fail("pretrain", exc)
    summary = train(preset, out, init=args.init, until=args.until, vision_from=args.vision_from)
    print(json.dumps({k: v for k, v in summary.items() if k != "preset"}, indent=1))
    return 0


def release_cmd(args: argparse.Namespace) -> int:
    from .modeling import ModelPathError
    from .release import measure_and_ship

    try:
        preset = preset_from(args)
        path = model_dir(args.model, preset)
        if args.findings is not None and not Path(args.findings).is_file():
            raise ValueError(f"no findings file {args.findings!r}")
        if args.ship is not None:
            writable(args.ship)
    except (ModelPathError, ValueError) as exc:
        return fail("release", exc)
    command = "mini-o3-lite " + shlex.join(args.argv)  # what the model card records
    print(json.dumps(measure_and_ship(preset, path, args.n_eval, args.n_search, args.ship, args.findings, command),
                     indent=1))
    return 0


def ship_cmd(args: argparse.Namespace) -> int:
    from .evaluate import ship

    try:
        written = ship(args.preset, args.names)
    except FileNotFoundError as exc:
        return fail("ship-evals", exc)
    print("\n".join(str(w) for w in written))
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

    p = sub.add_parser("compare", help="held-out comparison of agents, greedy and Avg@K, with paired standard errors")
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="preset (default: tiny)")
    p.add_argument("--models", nargs="+", default=["sft", "rl", "rl_nomask"], metavar="PATH_OR_STAGE",
                   help="agents to compare; the first is the reference the others are paired against")
    model_options(p)
    p.add_argument("--n", type=int, default=384, help="first N test questions (default 384; the split grows to N)")
    p.add_argument("--max-turns", type=int, default=16, help="turn budget (default 16)")
    p.add_argument("--samples", type=int, default=8, help="K of Avg@K, sampled at temperature 1.0 (default 8)")
    p.add_argument("--out", metavar="FILE", help="write the result as JSON here (notebook 05 reads such a file)")
    p.set_defaults(func=compare_cmd)

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

    p = sub.add_parser("pretrain", help="pretrain the tiny base VLM (resumes from <out>/checkpoint)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: runs/<preset>/base/)")
    p.add_argument("--init", metavar="DIR", help="start from this checkpoint directory instead of a fresh model")
    p.add_argument("--vision-from", metavar="DIR", help="take the vision tower and merger from this checkpoint")
    p.add_argument("--until", type=int, metavar="STEP", help="stop after this step with a checkpoint (resume later)")
    p.set_defaults(func=pretrain_cmd)
    pretraining = p
    p = sub.add_parser("release", help="measure a base checkpoint on held-out scenes; ship it with a model card")
    p.add_argument("--model", required=True, metavar="PATH_OR_STAGE", help="the checkpoint (metrics.json goes there)")
    p.add_argument("--n-eval", type=int, default=1024, metavar="N", help="held-out examples in the report")
    p.add_argument("--n-search", type=int, default=96, metavar="N", help="held-out easy + medium tile-search scenes")
    p.add_argument("--ship", metavar="DIR", help="write a bf16 copy here, measure it, and write its model card")
    p.add_argument("--findings", metavar="FILE", help="markdown: what was tried and what each gave (model card)")
    p.set_defaults(func=release_cmd)
    release = p
    p = sub.add_parser("ship-evals", help="copy finished evaluations from runs/<preset>/eval/ into the kit, where "
                                          "notebooks read them instead of computing")
    p.add_argument("names", nargs="+", metavar="NAME", help="evaluation folders under runs/<preset>/eval/")
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="preset (default: tiny)")
    p.set_defaults(func=ship_cmd)
    for q in (pretraining, release):
        q.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="preset (default: tiny)")
        q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a preset setting (repeatable), e.g. --set base.steps=100")
        q.set_defaults(model_path=None)
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    if any(v is not None and v < 1 for v in (getattr(args, k, None) for k in ("n", "max_turns", "samples"))):
        parser.error("--n, --max-turns and --samples must be at least 1")
    if any(v is not None and not v.isdigit() for v in (getattr(args, k, None) for k in ("first", "last"))):
        parser.error("--from and --to take a notebook number, e.g. 01")
    if args.command == "eval" and (args.benchmark is None) != (args.data is None):
        parser.error("--benchmark and --data go together: the benchmark's name and its local folder")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
