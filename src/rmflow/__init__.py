"""rmflow: train reward models for RLHF with Snakemake and score them RewardBench-style."""

__version__ = "0.1.0"
