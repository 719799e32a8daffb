"""annotator: turn a noisy face-identity dataset into a small, verified test set."""

__version__ = "0.1.0"
