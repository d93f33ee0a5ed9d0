"""Interlock: a self-hosted hub for bi-directional incident integrations."""

__version__ = "0.1.0"
