"""SLURM: the resource checks and sbatch lines of the profile's presets (resources) and submitit sweeps (submit)."""
