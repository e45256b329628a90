"""Batched agent loop vs a naive loop (one conversation at a time), same model, records and settings.

Both run greedy decoding on the same held-out VisualProbe-lite records, in this one process, and
the script prints trajectories/s and generated tokens/s for each, the speed-up ratio, and how many
trajectories came out identical (greedy decoding should not depend on batching). Each loop runs
with the key/value cache kept across turns (`turncache.py`, the default) and without it.

    python benchmarks/rollout_throughput.py [--model PATH] [--n 16] [--batch-size 16]
"""

import argparse
import time

from mini_o3_lite import dataset, modeling
from mini_o3_lite.presets import load_preset
from mini_o3_lite.rollout import RolloutConfig, model_policy, rollout


def timed_rollout(model, processor, records, images, cfg, reuse_cache):
    start = time.perf_counter()
    trajs = rollout(records, images, processor, model_policy(model, cfg, reuse_cache), cfg)
    seconds = time.perf_counter() - start
    return trajs, seconds, sum(sum(t.model_mask) for t in trajs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="checkpoint directory (default: the shipped tiny SFT agent)")
    p.add_argument("--n", type=int, default=16, help="records (conversations)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-turns", type=int, default=6)
    args = p.parse_args()
    preset = load_preset("tiny")
    model, processor = modeling.load(args.model or modeling.shipped("sft"))
    model.eval()
    records, images = dataset.make_split(preset.data, "test", preset.min_pixels, preset.max_pixels, n=args.n)
    images = [images[r.id] for r in records]
    base = dict(max_turns=args.max_turns, max_new_tokens=preset.max_new_tokens, do_sample=False,
                context_length=preset.context_length, context_reserve=preset.context_reserve, hints=preset.tile_hints)
    results = {}
    for reuse in (True, False):
        for size in (args.batch_size, 1):
            cfg = RolloutConfig(batch_size=size, **base)
            results[reuse, size] = timed_rollout(model, processor, records, images, cfg, reuse)
    batched = results[True, args.batch_size][0]
    turns = sum(t.turns for t in batched) / len(batched)
    print(f"{args.n} conversations, mean {turns:.1f} turns, greedy, max {args.max_turns} turns")
    for (reuse, size), (_, seconds, tokens) in results.items():
        loop = f"batched (batch {size})" if size > 1 else "naive (batch 1)"
        name = f"{loop}, cache {'kept' if reuse else 'rebuilt'}"
        print(f"{name:<36} {args.n / seconds:6.2f} trajectories/s {tokens / seconds:8.1f} generated tokens/s "
              f"({seconds:.1f} s)")
    for reuse in (True, False):
        (b, t_b, _), (n, t_n, _) = results[reuse, args.batch_size], results[reuse, 1]
        same = sum(x.input_ids == y.input_ids for x, y in zip(b, n, strict=True))
        print(f"cache {'kept' if reuse else 'rebuilt'}: ratio batched / naive {t_n / t_b:.2f}x trajectories/s; "
              f"identical trajectories: {same}/{args.n}")
    fastest, slowest = results[True, args.batch_size][1], results[False, 1][1]
    print(f"batched with the cache kept vs naive rebuilding it every turn: {slowest / fastest:.2f}x")


if __name__ == "__main__":
    main()
