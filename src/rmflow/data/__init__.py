"""Preference data: the standard row format, its validation, loaders, converters and the synthetic suite."""
