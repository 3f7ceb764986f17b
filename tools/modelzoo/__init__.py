"""modelzoo: download, verify and convert models described by Open Model Zoo descriptors."""

__version__ = "0.1.0"
