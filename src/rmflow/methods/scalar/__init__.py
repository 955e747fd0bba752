"""Scalar reward models trained on pairs side by side (bt, odin): train (the shared trainer and scorer)."""
