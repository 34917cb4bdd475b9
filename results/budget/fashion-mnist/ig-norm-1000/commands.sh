#!/bin/bash
# Budget check for docs/results.md: the Fashion-MNIST IG-NORM unit fine-tuned for 1,000 steps
# instead of the recipe's 400 (the same run continued from its step-400 checkpoint), evaluated with
# the unit's IN/CO settings and AA on the first 1,000 test images. Run from the repository root
# after `make repro DATASET=fashion-mnist`; 1 thread: ~19 min training, ~4 min IN/CO, ~1 min AA.
set -euo pipefail
B=runs/budget/fashion-mnist/ig-norm-1000
rm -rf "$B"; mkdir -p "$(dirname "$B")"; cp -r runs/repro/fashion-mnist/ig-norm "$B"
rm -f "$B"/eval_* "$B"/repro_phases.json
export OMP_NUM_THREADS=1
.venv/bin/robustattr train "$B/config.json" --set model_dir="$B" --set max_num_training_steps=1000 --set continue_train=true
.venv/bin/robustattr eval attribution "$B" --set num_attribution_examples=250 --set num_IG_steps=10 \
  --set attribution_attack_steps=20 --set attribution_attack_step_size=0.01 --set attribution_attack_times=1
.venv/bin/robustattr eval pgd "$B" --set num_eval_examples=10000 --set num_adversarial_examples=1000 \
  --set num_steps=20 --set step_size=0.01 --set random_start=true --set loss_func=xent
