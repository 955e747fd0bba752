"""Base models: tiny ones built from config for CPU runs, and the shared loader for hub or local models."""
