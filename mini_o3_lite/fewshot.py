"""The few-shot VLM teacher: Mini-o3's own cold-start recipe.

Mini-o3 makes its cold-start data by showing an existing VLM a handful of exemplar trajectories in
context, one per reasoning pattern, letting it run the agent loop on new questions (sampling several
tries per question) and keeping the trajectories that end with the correct answer. Here the exemplars
are the scripted teacher's own kept trajectories (`teacher.py`), the shortest of each pattern; the
model sees them between the system prompt and the question (`rollout.start`'s context), with their
images. The kit's tiny model cannot imitate a search from context, so the tiny cold start comes from
the scripted teacher; with a real Qwen2.5-VL this module is the paper's recipe.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from .rollout import RolloutConfig, model_policy, rollout

PATTERNS = ("direct", "depth_first", "trial_and_error", "target_maintenance")  # in the order shown


def pick_exemplars(trajectories, patterns: dict[str, str], per_pattern: int = 1) -> list:
    """The shortest kept trajectories of each reasoning pattern: the exemplars shown in context."""
    out = []
    for pattern in PATTERNS:
        same = sorted((t for t in trajectories if patterns.get(t.id) == pattern), key=lambda t: (len(t.messages), t.id))
        out += same[:per_pattern]
    return out


def fewshot_context(exemplars) -> tuple[list[dict], list]:
    """(messages, images) of the exemplars, without their system prompts, in the order shown."""
    messages, images = [], []
    for t in exemplars:
        messages += t.messages[1:]
        images += t.images
    return messages, images


def fewshot_trajectories(model, processor, records, images, exemplars, preset, max_turns: int,
                         samples: int = 1, temperature: float = 0.7, seed: int = 0, progress: bool = False,
                         policy=None):
    """Mini-o3's few-shot teacher: exemplars in context, the model runs the agent loop, correct ones are kept.

    Each record is tried `samples` times (sampling at `temperature`, seeds seed, seed+1, ...). A kept
    trajectory ends with the correct answer; duplicates (same record, same assistant turns) are
    dropped; the exemplars are cut out of the kept conversations, so they read like any other
    trajectory (system prompt, question, turns). No context limit: the exemplars alone can fill the
    preset's. `policy` replaces the model's (tests). Returns (kept, stats).
    """
    context = fewshot_context(exemplars)
    cfg = RolloutConfig.for_preset(preset, max_turns, context_length=10**6, temperature=temperature)
    tried, kept, seen = [], [], set()
    for k in range(samples):
        cfg_k = replace(cfg, seed=seed + k)
        tried += rollout(records, images, processor, policy or model_policy(model, cfg_k), cfg_k, progress, context)
    tokens = round(sum(len(t.input_ids) for t in tried) / max(1, len(tried)))  # exemplars included
    for t in tried:
        t.reward = float(t.finish == "answer" and t.answer == t.answer_key)
        key = (t.id, tuple(m["content"][0]["text"] for m in t.messages if m["role"] == "assistant"))
        if t.reward and key not in seen:
            seen.add(key)
            # cut the exemplars out; the ids/masks included them, so they are dropped (SFT re-renders the messages)
            t.messages = t.messages[:1] + t.messages[1 + len(context[0]):]
            t.context_images, t.input_ids, t.model_mask, t.logprobs = [], [], [], []
            kept.append(t)
    stats = {
        "records": len(records), "samples": samples, "tried": len(tried), "correct": int(sum(t.reward for t in tried)),
        "kept": len(kept), "yield": round(len(kept) / max(1, len(tried)), 4),
        "mean_tokens_with_exemplars": tokens,
        "finish": dict(Counter(t.finish for t in tried)),
        "turns_kept": dict(sorted(Counter(t.turns for t in kept).items())),
    }
    return kept, stats
