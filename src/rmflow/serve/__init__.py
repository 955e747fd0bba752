"""Serving trained reward models to RLHF trainers: ``rmflow serve`` (an HTTP reward server for every method) and
``rmflow export`` (a checkpoint vLLM, TRL, OpenRLHF and verl load as they are, for one-head scalar methods)."""
