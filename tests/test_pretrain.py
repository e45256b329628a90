"""The pretraining loop: exact resume after an interrupt, and a continuation over another vision tower."""

from __future__ import annotations

import torch

from mini_o3_lite import cli, pretrain
from mini_o3_lite.modeling import load, shipped
from mini_o3_lite.presets import load_preset

TOY = {"base.hidden": 64, "base.layers": 1, "base.vision_depth": 1, "base.vision_hidden": 64, "base.vocab_size": 400,
       "base.batch_size": 2, "base.eval_every": 1000, "base.n_eval": 2, "base.checkpoint_minutes": 0.0}


def test_resume_after_interrupt_gives_the_same_model(tmp_path):
    full = load_preset("tiny", **TOY, **{"base.steps": 4})
    pretrain.train(full, tmp_path / "straight", progress=False, log=lambda s: None)
    # the same run interrupted after 2 steps, then started again: it resumes from its checkpoint
    stopped = pretrain.train(full, tmp_path / "resumed", progress=False, log=lambda s: None, until=2)
    assert stopped == {"steps": 2, "interrupted": True}
    assert not (tmp_path / "resumed" / "model.safetensors").exists()
    pretrain.train(full, tmp_path / "resumed", progress=False, log=lambda s: None)
    a, _ = load(tmp_path / "straight")
    b, _ = load(tmp_path / "resumed")
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


def test_language_model_only_continuation_over_another_vision_tower(tmp_path):
    toy = load_preset("tiny", **TOY, **{"base.steps": 2})
    pretrain.train(toy, tmp_path / "a", progress=False, log=lambda s: None)
    other = load_preset("tiny", **TOY, **{"base.steps": 2, "base.seed": 1, "base.lr": 1e-2})
    pretrain.train(other, tmp_path / "b", progress=False, log=lambda s: None)
    frozen = load_preset("tiny", **TOY, **{"base.steps": 2, "base.freeze_vision": True})
    pretrain.train(frozen, tmp_path / "c", init=tmp_path / "a", vision_from=tmp_path / "b", progress=False,
                   log=lambda s: None)
    a, b, c = (load(tmp_path / name)[0] for name in "abc")
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    vision = [n for n in sc if n.startswith("model.visual.")]
    language = [n for n in sc if "language_model" in n]
    assert vision and language
    assert not all(torch.equal(sa[n], sb[n]) for n in vision)  # two different towers to start with
    assert all(torch.equal(sc[n], sb[n]) for n in vision)  # b's tower, untouched by the training
    assert any(not torch.equal(sc[n], sa[n]) for n in language)  # a's language model, trained


def test_the_pretrain_command_checks_its_settings_then_trains_into_out(tmp_path, capsys):
    assert cli.main(["pretrain", "--out", str(tmp_path / "x"), "--set", "base.stepz=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mini-o3-lite pretrain: error: unknown setting 'base.stepz'") and err.count("\n") == 1
    assert cli.main(["pretrain", "--out", str(tmp_path / "x"), "--init", str(tmp_path / "nothing")]) == 2
    assert str(tmp_path / "nothing") in capsys.readouterr().err
    base = str(shipped("base"))  # a continuation run, stopped before its first step
    assert cli.main(["pretrain", "--out", str(tmp_path / "run"), "--init", base, "--until", "0"]) == 0
    assert '"interrupted": true' in capsys.readouterr().out
    assert (tmp_path / "run" / "checkpoint" / "trainer_state.pt").exists()
