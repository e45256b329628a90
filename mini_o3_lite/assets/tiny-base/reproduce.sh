#!/usr/bin/env bash
# tiny-base6n from nothing: the ten pretraining stages of its lineage, in order, as their model cards record them
# (checkpoints/tiny-base6b, 6c, 6d, 6h and this folder's README.md, "What was tried"). 4.6 hours of training on 2 CPU cores
# (the cards' wall times), plus the held-out report after each stage.
# Three stages start from a checkpoint's bf16 copy (6c, 6d, 6h), as the recorded runs did; those copies are made
# here too. Every stage resumes from <out>/checkpoint, so the script can be run again after an interruption.
# Written from the cards in session 31; the stages were run one by one over sessions 20-27, not by this script.
# Checked in session 31 with the code of that day (`--until 3` into a scratch folder): the first steps of the first
# stage, of stage D and of stage N give the recorded losses to the 4 decimals logged (6.51, 6.5596, 6.4347;
# 0.0904, 0.0731; 0.5433, 0.4221, 0.3653).
set -euo pipefail
cd "$(dirname "$0")/../../.."
P="python -m mini_o3_lite.pretrain"
S="runs/tiny/repro"  # the bf16 copies the later stages start from, and the final one
OLD="-p base.presence_lookup=True -p base.presence_blind=0.25 -p base.presence_hard=0.2 -p tile_hints=True"
NEW="-p base.presence_lookup=true -p base.presence_blind=0 -p base.presence_hard=0.2 -p tile_hints=true"
MIX="base.task_weights=[0.4,0.45,0.075,0.075]"
ship() { python -c "from mini_o3_lite import release; release.ship('$1', '$2')"; }

$P --out runs/tiny/base6 -p base.steps=4000 -p base.lr=1e-3 $OLD
$P --init runs/tiny/base6 --out runs/tiny/base6b -p base.steps=1200 -p base.lr=3e-4 -p base.warmup=0.03 $OLD
$P --init runs/tiny/base6b --out runs/tiny/base6c -p base.steps=400 -p base.lr=3e-4 -p base.warmup=0.03 \
   -p base.step_share=0.5 -p base.eval_every=100 $OLD
ship runs/tiny/base6c $S/tiny-base6c
$P --init $S/tiny-base6c --out runs/tiny/base6d -p base.steps=400 -p base.lr=2e-4 -p base.warmup=0.03 \
   -p base.step_share=0.6 -p base.eval_every=100 $OLD --n-eval 512 --n-search 96 --ship $S/tiny-base6d
$P --init $S/tiny-base6d --out runs/tiny/base6f -p base.steps=600 -p base.lr=2e-4 -p base.warmup=0.03 \
   -p base.step_share=0 -p base.eval_every=150 $NEW -p 'base.task_weights=[0.3,0.5,0.1,0.1]' --n-eval 512 --n-search 96
$P --init runs/tiny/base6f --out runs/tiny/base6g -p base.steps=700 -p base.lr=2e-4 -p base.warmup=0.03 \
   -p base.step_share=0 -p base.eval_every=175 $NEW -p 'base.task_weights=[0.25,0.6,0.075,0.075]' --n-eval 512 --n-search 96
$P --init runs/tiny/base6g --out runs/tiny/base6h -p base.steps=350 -p base.lr=1e-4 -p base.warmup=0.03 \
   -p base.step_share=0 -p base.eval_every=175 $NEW -p 'base.task_weights=[0.25,0.6,0.075,0.075]' --n-eval 512 --n-search 96
ship runs/tiny/base6h $S/tiny-base6h
$P --init $S/tiny-base6h --out runs/tiny/base6k -p base.steps=200 -p base.lr=1e-4 -p base.warmup=0.03 \
   -p base.step_share=0 -p 'base.depth_weights=[1,0,0,0]' -p base.eval_every=100 $NEW -p 'base.task_weights=[1,0,0,0]' \
   --n-eval 512 --n-search 96
$P --init runs/tiny/base6k --out runs/tiny/base6m -p base.steps=400 -p base.lr=1e-4 -p base.warmup=0.03 \
   -p base.step_share=0 -p 'base.depth_weights=[0.5,0.2,0.2,0.1]' -p base.eval_every=200 $NEW -p "$MIX" --n-eval 512 --n-search 96
$P --init runs/tiny/base6m --out runs/tiny/base6n -p base.steps=120 -p base.lr=1e-4 -p base.warmup=0.03 \
   -p base.step_share=0.4 -p 'base.depth_weights=[0.5,0.2,0.2,0.1]' -p base.eval_every=120 $NEW -p "$MIX" --n-eval 512 --n-search 96
$P --out runs/tiny/base6n -p base.steps=120 -p base.lr=1e-4 -p base.warmup=0.03 -p base.step_share=0.4 \
   -p 'base.depth_weights=[0.5,0.2,0.2,0.1]' -p base.eval_every=120 $NEW -p "$MIX" --report-only --n-eval 512 --n-search 96 \
   --ship $S/tiny-base6n
