"""The package version: one string, imported by everything that records it (rules files, cards, results)."""

__version__ = "0.1.0"
