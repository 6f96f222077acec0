"""visionloop: self-hosted computer vision with custom labels, pretrained analysis and human review."""

__version__ = "0.1.0"

__all__ = ["__version__"]
