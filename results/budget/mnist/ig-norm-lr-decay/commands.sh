# Probe (2026-12-01): does a learning-rate decay lift the MNIST IG-NORM unit's AA?
# Continues the unit's final model (3,000 steps at Adam 1e-3) for 500 steps at 1e-4, full eps.
robustattr train runs/repro/mnist/ig-norm/config.json --set model_dir=/tmp/ign-decay \
  --set init_from=runs/repro/mnist/ig-norm --set max_num_training_steps=500 \
  --set learning_rate=0.0001 --set epsilon_ramp_steps=0 --set num_checkpoint_steps=250 --overwrite
python scripts/checkpoint_curve.py /tmp/ign-decay --recipe configs/repro/mnist/ig-norm.json \
  --examples 1000 --out results/budget/mnist/ig-norm-lr-decay
