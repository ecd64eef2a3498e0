"""Environment conformance suite for AI Singapore's MLOps platform."""

__version__ = "0.1.0"
