#!/usr/bin/env bash
# The shipped tiny base from nothing: the ten pretraining stages of its lineage (A, B, C, D, F, G, H, K, M, N), in
# order, as this folder's README.md ("Lineage", "What was tried") and papers/experiments.md record them. 4.6 hours of
# training on 2 CPU cores (the stages' logs, training_log_stage_<letter>.json), plus the held-out report after each stage.
# The last line writes the shipped checkpoint's bf16 copy and model card to runs/tiny/repro/tiny-base6n.
# Three stages start from a checkpoint's bf16 copy (6c, 6d, 6h), as the recorded runs did; those copies are made
# here too. Every stage resumes from <out>/checkpoint, so the script can be run again after an interruption.
# The recorded stages were trained with a learning-rate schedule of their own (a linear warm-up from 1/w times a
# cosine over the whole run); `pretrain.train` now uses transformers' get_cosine_schedule_with_warmup (warm-up from 0,
# then the cosine), so a run of this script follows the recorded curves closely but not to the logged decimals.
set -euo pipefail
cd "$(dirname "$0")/../../.."
P="mini-o3-lite pretrain"
R="mini-o3-lite release"
S="runs/tiny/repro"  # the bf16 copies the later stages start from, and the final one
OLD="--set base.presence_lookup=True --set base.presence_blind=0.25 --set base.presence_hard=0.2 --set tile_hints=True"
NEW="--set base.presence_lookup=true --set base.presence_blind=0 --set base.presence_hard=0.2 --set tile_hints=true"
MIX="base.task_weights=[0.4,0.45,0.075,0.075]"
ship() { python -c "from mini_o3_lite import release; release.ship('$1', '$2')"; }

$P --out runs/tiny/base6 --set base.steps=4000 --set base.lr=1e-3 $OLD
$R --model runs/tiny/base6 $OLD
$P --init runs/tiny/base6 --out runs/tiny/base6b --set base.steps=1200 --set base.lr=3e-4 --set base.warmup=0.03 $OLD
$R --model runs/tiny/base6b $OLD
$P --init runs/tiny/base6b --out runs/tiny/base6c --set base.steps=400 --set base.lr=3e-4 --set base.warmup=0.03 \
   --set base.step_share=0.5 --set base.eval_every=100 $OLD
$R --model runs/tiny/base6c $OLD
ship runs/tiny/base6c $S/tiny-base6c
$P --init $S/tiny-base6c --out runs/tiny/base6d --set base.steps=400 --set base.lr=2e-4 --set base.warmup=0.03 \
   --set base.step_share=0.6 --set base.eval_every=100 $OLD
$R --model runs/tiny/base6d $OLD --n-eval 512 --n-search 96 --ship $S/tiny-base6d
$P --init $S/tiny-base6d --out runs/tiny/base6f --set base.steps=600 --set base.lr=2e-4 --set base.warmup=0.03 \
   --set base.step_share=0 --set base.eval_every=150 $NEW --set 'base.task_weights=[0.3,0.5,0.1,0.1]'
$R --model runs/tiny/base6f $NEW --n-eval 512 --n-search 96
$P --init runs/tiny/base6f --out runs/tiny/base6g --set base.steps=700 --set base.lr=2e-4 --set base.warmup=0.03 \
   --set base.step_share=0 --set base.eval_every=175 $NEW --set 'base.task_weights=[0.25,0.6,0.075,0.075]'
$R --model runs/tiny/base6g $NEW --n-eval 512 --n-search 96
$P --init runs/tiny/base6g --out runs/tiny/base6h --set base.steps=350 --set base.lr=1e-4 --set base.warmup=0.03 \
   --set base.step_share=0 --set base.eval_every=175 $NEW --set 'base.task_weights=[0.25,0.6,0.075,0.075]'
$R --model runs/tiny/base6h $NEW --n-eval 512 --n-search 96
ship runs/tiny/base6h $S/tiny-base6h
$P --init $S/tiny-base6h --out runs/tiny/base6k --set base.steps=200 --set base.lr=1e-4 --set base.warmup=0.03 \
   --set base.step_share=0 --set 'base.depth_weights=[1,0,0,0]' --set base.eval_every=100 $NEW \
   --set 'base.task_weights=[1,0,0,0]'
$R --model runs/tiny/base6k $NEW --n-eval 512 --n-search 96
$P --init runs/tiny/base6k --out runs/tiny/base6m --set base.steps=400 --set base.lr=1e-4 --set base.warmup=0.03 \
   --set base.step_share=0 --set 'base.depth_weights=[0.5,0.2,0.2,0.1]' --set base.eval_every=200 $NEW --set "$MIX"
$R --model runs/tiny/base6m $NEW --n-eval 512 --n-search 96
$P --init runs/tiny/base6m --out runs/tiny/base6n --set base.steps=120 --set base.lr=1e-4 --set base.warmup=0.03 \
   --set base.step_share=0.4 --set 'base.depth_weights=[0.5,0.2,0.2,0.1]' --set base.eval_every=120 $NEW --set "$MIX"
$R --model runs/tiny/base6n $NEW --n-eval 512 --n-search 96
$R --model runs/tiny/base6n $NEW --n-eval 512 --n-search 96 --ship $S/tiny-base6n
