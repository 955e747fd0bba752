"""Evaluation: per-example scoring and RewardBench's section and overall rules."""
