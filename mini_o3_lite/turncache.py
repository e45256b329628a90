"""Reusing the key/value cache across turns, so each turn encodes only what is new.

Without it every turn re-encodes the whole conversation (system prompt, every image, every earlier
turn), so a T-turn rollout costs about T^2 / 2 turns of prefill, and a 32-turn evaluation on a CPU
is almost all prefill. transformers' `generate` can continue from a cache when it is given the
full sequence and a cache that holds its beginning ("cache continuation"); what it does not do is
the bookkeeping for a *batch* whose rows grow by different amounts every turn and leave when they
finish. `TurnCache` does that bookkeeping, and nothing else:

- the cache is one rectangle [rows, heads, columns, head dim]; a row's own tokens sit in some of
  the columns, the rest (left padding, tokens the batch generated after that row had stopped) are
  masked out. `mask[i]` marks row i's columns, `count[i]` is how many of its tokens are cached;
- each turn, every row's new tokens (the unfed tail of its last reply, the observation, the next
  prompt) are left-padded into a block of new columns. Qwen2.5-VL computes its M-RoPE positions from
  the attention mask, so positions and attention are exactly those of the conversation encoded in
  one piece;
- images already in the cache are not encoded again: only the new ones go through the vision tower
  (passed to the model as `mm_encoder_outputs`).

Greedy rollouts come out token for token the same as without it (tests/test_rollout.py).

`GrowingCache` is transformers' `DynamicCache` with buffers that grow in steps: `DynamicLayer`
appends each generated token with `torch.cat`, which copies the whole cache every step, and for a
batch of long conversations on a CPU that copy was most of the decoding time. When a turn's prompt
arrives the buffers are sized for it plus the turn's longest reply (`headroom`), so a turn grows them
at most once and the brief old-plus-new copy is about 2x the cache, not the 3x of doubling.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

from .modeling import core


class GrowingLayer(DynamicLayer):
    """A `DynamicLayer` whose keys and values are views of buffers that grow by `headroom` columns when full."""

    def __init__(self, headroom: int = 0):
        super().__init__()
        self.headroom = headroom

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            self.buffers = None
        have = 0 if self.buffers is None else self.keys.shape[-2]
        need = have + key_states.shape[-2]
        if self.buffers is None or need > self.buffers[0].shape[-2]:
            size = need + (self.headroom or max(have, 256))  # no headroom known: double
            grown = []
            for new in (key_states, value_states):
                buffer = new.new_empty(*new.shape[:-2], size, new.shape[-1])
                grown.append(buffer)
            if have:
                grown[0][..., :have, :], grown[1][..., :have, :] = self.keys, self.values
            self.buffers = grown
        self.buffers[0][..., have:need, :], self.buffers[1][..., have:need, :] = key_states, value_states
        self.keys, self.values = self.buffers[0][..., :need, :], self.buffers[1][..., :need, :]
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.buffers is not None:
            need = self.keys.shape[-2]
            self.buffers = [b[indices, ...] for b in self.buffers]
            self.keys, self.values = self.buffers[0][..., :need, :], self.buffers[1][..., :need, :]


class GrowingCache(DynamicCache):
    """`DynamicCache` made of `GrowingLayer`s (generate treats it as a dynamic cache).

    `headroom`: columns to add beyond what a prompt needs when a buffer must grow (a turn's `max_new_tokens`).
    """

    def __init__(self, headroom: int = 0):
        Cache.__init__(self, layer_class_to_replicate=lambda: GrowingLayer(headroom))


class TurnCache:
    """The cache of one batch of conversations (`rollout` makes a new `Batcher`, hence a new one, per batch)."""

    def __init__(self, model, batcher, headroom: int = 0):
        self.model, self.batcher, self.headroom = model, batcher, headroom
        self.cache = None
        self.rows: list[int] = []  # id() of each row's trajectory
        self.mask = torch.zeros(0, 0, dtype=torch.long)
        self.count: list[int] = []

    def inputs(self, active: list) -> dict[str, torch.Tensor]:
        """Model inputs for this turn: the full sequences, with the cache of their beginnings when there is one."""
        b = self.batcher
        if self.cache is None:
            return {**b.batch(active), "cache": GrowingCache(self.headroom)}
        keep = [self.rows.index(id(t)) for t in active]
        if keep != list(range(len(self.rows))):
            self.cache.batch_select_indices(torch.tensor(keep))
            self.mask, self.count = self.mask[keep], [self.count[i] for i in keep]
        self.rows = [id(t) for t in active]
        cached = self.mask.shape[1]
        new = [t.input_ids[c:] for t, c in zip(active, self.count, strict=True)]
        width = cached + max(len(n) for n in new)
        ids = torch.full((len(active), width), b.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        mask[:, :cached] = self.mask
        images, fresh = [], []
        for row, (t, c, n) in enumerate(zip(active, self.count, new, strict=True)):
            ids[row, :cached][self.mask[row].bool()] = torch.tensor(t.input_ids[:c])
            ids[row, width - len(n):] = torch.tensor(n, dtype=torch.long)
            mask[row, width - len(n):] = 1
            row_images = [*t.context_images, *t.images]
            seen = t.input_ids[:c].count(b.image_id)  # images are never split: the environment adds them whole
            for image in row_images:
                if seen <= 0:
                    fresh.append(image)
                seen -= int(b.pixels(image)[1].prod()) // b.merge
                images.append(image)
        out = {"input_ids": ids, "attention_mask": mask, "mm_token_type_ids": (ids == b.image_id).long(),
               "image_grid_thw": torch.stack([b.pixels(i)[1] for i in images]), "cache": self.cache}
        body = core(self.model).model  # the VLM body, also under a PEFT wrapper
        if fresh:
            device = self.model.device
            out["mm_encoder_outputs"] = {"image": body.get_image_features(
                torch.cat([b.pixels(i)[0] for i in fresh]).to(device, self.model.dtype),
                torch.stack([b.pixels(i)[1] for i in fresh]).to(device), return_dict=True)}
        body.rope_deltas = None  # positions are recomputed from the mask, not from an earlier batch
        return out

    def update(self, active: list, inputs: dict, cache, kept: list[int]) -> None:
        """After `generate`: remember the cache and which columns now hold each row's tokens.

        `kept[i]`: how many generated tokens row i keeps (its reply up to its own stop).
        """
        width = inputs["input_ids"].shape[1]
        generated = cache.get_seq_length() - width  # the last sampled token was never fed, so has no cache entry
        mask = torch.cat([inputs["attention_mask"], torch.zeros(len(active), generated, dtype=torch.long)], dim=1)
        old = self.count if self.count else [0] * len(active)
        count = []
        for row in range(len(active)):
            fed = min(kept[row], generated)
            mask[row, width:width + fed] = 1
            new = int(inputs["attention_mask"][row, self.mask.shape[1] if self.count else 0:].sum())
            count.append(old[row] + new + fed)
        self.cache, self.mask, self.count, self.rows = cache, mask, count, [id(t) for t in active]
