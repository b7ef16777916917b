"""Implementation of :mod:`srhm_datasets.torch` (import the public names from there)."""
