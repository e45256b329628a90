"""GRPO on hand-built batches: advantages, masks of exceeded rollouts in each variant, clipping,
no loss on observation tokens; and a tiny run that resumes to the same weights."""

from __future__ import annotations

import copy
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from mini_o3_lite import dataset, grpo, modeling, protocol
from mini_o3_lite.presets import load_preset
from mini_o3_lite.rollout import Batcher, RolloutConfig, replay_policy, rollout

T, F = True, False


RL = load_preset("tiny").rl  # Mini-o3's objective: clip 0.2 / 0.3, no KL, no entropy bonus


def test_group_advantages_keep_exceeded_in_the_statistics_under_masking():
    rewards, exceeded = torch.tensor([1.0, 0.0, 0.0, 0.0]), torch.tensor([F, F, T, T])
    kept = grpo.group_advantages(rewards, grpo.exceeded_handling(exceeded, "mask")[1])  # mean 0.25, std 0.5
    assert torch.allclose(kept, torch.tensor([1.5, -0.5, -0.5, -0.5]), atol=1e-5)
    dropped = grpo.group_advantages(rewards, grpo.exceeded_handling(exceeded, "drop")[1])  # stats over [1, 0]
    assert torch.allclose(dropped[:2], torch.tensor([0.7071, -0.7071]), atol=1e-4)
    assert torch.all(grpo.group_advantages(torch.ones(4), torch.ones(4, dtype=torch.bool)) == 0)  # no signal
    assert torch.all(grpo.group_advantages(rewards, torch.tensor([T, F, F, F])) == 0)  # one in the statistics


@pytest.mark.parametrize("mode, weight, in_stats", [
    ("mask", [1, 1, 0, 0], [T, T, T, T]),  # Mini-o3: no gradient from exceeded rollouts, kept in the statistics
    ("keep", [1, 1, 1, 1], [T, T, T, T]),  # the ablation: they teach "answer sooner"
    ("drop", [1, 1, 0, 0], [T, T, F, F]),  # out of the statistics, so they cannot carry loss either
])
def test_exceeded_handling(mode, weight, in_stats):
    w, s = grpo.exceeded_handling(torch.tensor([F, F, T, T]), mode)
    assert w.tolist() == weight and s.tolist() == in_stats


def test_exceeded_handling_names_a_wrong_mode():
    with pytest.raises(ValueError, match="rl.exceeded .*'masked'"):
        grpo.exceeded_handling(torch.tensor([F]), "masked")


def test_carries_signal_marks_every_trajectory_of_a_mixed_group():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    assert grpo.carries_signal(rewards, 2).tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    assert grpo.carries_signal(rewards, 4).tolist() == [1] * 8


def test_grpo_loss_is_a_token_mean_and_clips_asymmetrically():
    adv = torch.tensor([1.0, -1.0])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    zeros, ones = torch.zeros(2, 3), torch.ones(2)
    loss, stats = grpo.grpo_loss(zeros, zeros, adv, mask, ones, RL, n_tokens=3)
    assert loss.item() == pytest.approx(-(1 + 1 - 1) / 3) and stats["clipped"] == 0  # ratio 1: -mean(A) per token
    logp = torch.log(torch.tensor([[1.5, 1.2, 9.0], [0.5, 9.0, 9.0]]))  # ratios; masked entries are ignored
    loss, stats = grpo.grpo_loss(logp, zeros, adv, mask, ones, RL, n_tokens=3)
    # row 0: min(1.5, 1.3) = 1.3 (clipped high at 1 + 0.3), min(1.2, 1.2) = 1.2; row 1: min(-0.5, -0.8) = -0.8
    assert loss.item() == pytest.approx(-(1.3 + 1.2 - 0.8) / 3, rel=1e-5) and stats["clipped"] == 2
    assert stats["tokens"] == 3 and "kl" not in stats


def test_grpo_loss_weight_removes_a_trajectory_and_n_tokens_normalises():
    adv, mask = torch.tensor([1.0, 2.0]), torch.ones(2, 4)
    zeros = torch.zeros(2, 4)
    loss, stats = grpo.grpo_loss(zeros, zeros, adv, mask, torch.tensor([1.0, 0.0]), RL, n_tokens=8)
    assert loss.item() == pytest.approx(-4 / 8) and stats["tokens"] == 4  # the second row carries nothing


def test_grpo_loss_kl_and_entropy_terms():
    cfg = replace(RL, kl_coef=0.5, entropy_coef=0.1)
    logp, start = torch.log(torch.tensor([[0.5, 0.25]])), torch.log(torch.tensor([[0.25, 0.25]]))
    entropy, mask, adv = torch.tensor([[2.0, 4.0]]), torch.ones(1, 2), torch.zeros(1)  # advantage 0: no surrogate
    loss, stats = grpo.grpo_loss(logp, logp, adv, mask, torch.ones(1), cfg, 2, entropy, start)
    kl = (0.5 - torch.log(torch.tensor(0.5)) - 1).item()  # k3 at the first token: r - log r - 1, r = 0.25 / 0.5
    assert stats["kl"] == pytest.approx(kl, rel=1e-5)  # the second token's is 0
    assert loss.item() == pytest.approx(0.5 * kl / 2 - 0.1 * 6 / 2, rel=1e-5)


def test_loss_never_reaches_observation_or_prompt_tokens(tiny_model, tiny_processor):
    """Gradients of the loss w.r.t. the log-probs are zero wherever the model did not write the token."""
    image = Image.new("RGB", (400, 400), (90, 140, 200))

    class Rec:
        id, question, answer, choices = "r", "What colour is the dot on the red square?", "blue", None

    turns = [protocol.assistant_text("I see spots.", protocol.tool_call_text((0, 0, 0.5, 0.5), "original_image")),
             '<grounding>{"bbox_2d": [1, 2]}</grounding>',  # invalid: an error observation follows
             protocol.assistant_text("I see it.", protocol.answer_text("blue"))]
    traj = rollout([Rec()], [image], tiny_processor, replay_policy({"r": turns}), RolloutConfig(max_turns=6))[0]
    batch, mask = grpo.masked_batch(Batcher(tiny_processor), [traj], "cpu")
    logp, _, tok_mask = grpo.token_logprobs(tiny_model, batch, mask, 1.0)
    logp = logp.detach().requires_grad_(True)
    loss, _ = grpo.grpo_loss(logp, logp.detach(), torch.tensor([1.0]), tok_mask, torch.ones(1), RL,
                             float(tok_mask.sum()))
    loss.backward()
    carried = (logp.grad[0] != 0).nonzero().flatten() + 1  # position of the predicted token
    ids = batch["input_ids"][0, carried].tolist()
    text = tiny_processor.tokenizer.decode(ids)
    assert text == "".join(turns)  # exactly the model's three turns, nothing of the system prompt or observations
    assert protocol.observation_text(1)[0] not in text and "bbox_2d must" not in text


@pytest.fixture(scope="module")
def rl_setup(tiny, tmp_path_factory):
    """A saved toy checkpoint, a tiny training split, and a preset small enough for two fast steps."""
    model, processor = tiny
    init = modeling.save(copy.deepcopy(model), processor, tmp_path_factory.mktemp("init") / "model")
    preset = load_preset("tiny", max_new_tokens=6, rollout_batch_size=8,
                         rl={"max_turns": 2, "steps": 2, "prompts_per_step": 2, "group_size": 4, "lr": 1e-3,
                             "mini_batch_prompts": 1, "micro_batch_size": 2, "save_every": 1})
    records, images = dataset.make_split(preset.data, "train", preset.min_pixels, preset.max_pixels, n=3)
    return preset, init, records, [images[r.id] for r in records]


def test_two_steps_log_everything_and_resume_exactly(rl_setup, tmp_path, monkeypatch):
    preset, init, records, images = rl_setup
    # an untrained toy model never answers right: a stand-in reward that varies within groups makes updates happen
    monkeypatch.setattr(grpo, "reward", lambda traj, record: float(sum(traj.input_ids) % 2))
    full = grpo.train(preset, init, tmp_path / "a", records, images, progress=False, log=lambda *_: None)
    assert [h["step"] for h in full] == [1, 2] and sum(h["informative_groups"] for h in full) > 0
    assert "accuracy" not in full[0]  # the reward is the accuracy: logged once
    for key in ("reward", "mean_turns", "exceeded", "masked_tokens", "clip_fraction", "entropy", "kl",
                "rss_mb", "peak_rss_mb"):
        assert key in full[0]
    grpo.train(preset, init, tmp_path / "b", records, images, progress=False, until=1)  # an interrupt after step 1
    resumed = grpo.train(preset, init, tmp_path / "b", records, images, progress=False, log=lambda *_: None)
    strip = ("seconds", "rollout_seconds", "rss_mb", "peak_rss_mb")
    assert [{k: v for k, v in h.items() if k not in strip} for h in resumed] == \
        [{k: v for k, v in h.items() if k not in strip} for h in full]
    a, _ = modeling.load(tmp_path / "a" / "model")
    b, _ = modeling.load(tmp_path / "b" / "model")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    start, _ = modeling.load(init)
    moved = [n for n, p in a.named_parameters() if not torch.equal(p, start.state_dict()[n])]
    assert moved and not any(".visual." in n or n.startswith("model.visual") for n in moved)  # vision frozen


def test_refill_replaces_groups_without_signal(rl_setup, monkeypatch):
    """Dynamic sampling: all-equal groups are replaced by a fresh round's informative ones, which come first."""
    preset, _, records, images = rl_setup
    rounds = []

    def fake_rollout(recs, ims, processor, policy, settings):
        rounds.append(settings.seed)
        return [SimpleNamespace(id=r.id, turns=1, exceeded=False, round=len(rounds) - 1) for r in recs]

    first = grpo.sample_groups(preset, records, images, 0, 1)[0][0].id.split("#")[0]  # round 1's first prompt
    monkeypatch.setattr(grpo, "rollout", fake_rollout)
    monkeypatch.setattr(grpo, "model_policy", lambda model, settings: None)
    # round 0: every group all wrong; from round 1 on, two of each first group's rollouts right
    monkeypatch.setattr(grpo, "reward", lambda t, r: float(t.round >= 1 and t.id.split("#")[0] == first
                                                           and t.id.endswith(("#0", "#2"))))
    capped = replace(preset, rl=replace(preset.rl, refill=1))
    trajs, rewards, every = grpo.sample_batch(None, None, capped, records, images, 0)
    assert len(rounds) == 2 and len(set(rounds)) == 2 and len(every) == 16  # one refill round, with its own seed
    assert len(trajs) == len(rewards) == 8 and trajs[0].round == 1 and trajs[0].id == f"{first}#0"  # signal first
    assert rewards[:4].tolist() == [1, 0, 1, 0] and sum(r for _, r in every) == 2
    rounds.clear()
    trajs, rewards, every = grpo.sample_batch(None, None, replace(capped, rl=replace(preset.rl, refill=9)), records,
                                              images, 0)
    assert len(rounds) == 3 and len(every) == 24  # stops once the batch is all signal (rounds 1 and 2)
    rounds.clear()
    trajs, rewards, every = grpo.sample_batch(None, None, preset, records, images, 0)  # no refill: one round, as drawn
    drawn = grpo.sample_groups(preset, records, images, 0)[0]
    assert len(rounds) == 1 and [t.id for t in trajs] == [r.id for r in drawn]


def test_recorded_logprobs_line_up_with_the_update_pass(rl_setup):
    """The old policy's log-probs come from sampling (no second forward pass): at the first update the policy is
    the sampling one, so they equal the update's own log-probs on every model token (ratio 1)."""
    preset, init, records, images = rl_setup
    model, processor = modeling.load(init)
    settings = grpo.rollout_config(preset, 0)
    trajs = grpo.rollout(records[:2], images[:2], processor, grpo.model_policy(model, settings), settings)
    batch, mask = grpo.masked_batch(grpo.Batcher(processor), trajs, "cpu")
    with torch.no_grad():
        logp, _, tok_mask = grpo.token_logprobs(model, batch, mask, settings.temperature)
    old = grpo.recorded_logprobs(trajs, batch["input_ids"].shape[1], "cpu")
    assert tok_mask.sum() > 0
    assert torch.allclose(old[tok_mask.bool()], logp[tok_mask.bool()], atol=2e-3)


def test_only_trajectories_with_a_gradient_are_run(rl_setup, tmp_path, monkeypatch):
    """Exceeded trajectories (over-turn masking) and groups whose rewards are all equal cost no forward pass."""
    preset, init, records, images = rl_setup
    monkeypatch.setattr(grpo, "reward", lambda traj, record: 0.0)  # every group flat: nothing to learn from
    seen = []
    forward = grpo.token_logprobs
    monkeypatch.setattr(grpo, "token_logprobs", lambda model, batch, *a: seen.append(len(batch["input_ids"]))
                        or forward(model, batch, *a))
    history = grpo.train(preset, init, tmp_path, records, images, progress=False, until=1)
    assert seen == [] and history[0]["informative_groups"] == 0 and history[0]["masked_tokens"] == 1.0
