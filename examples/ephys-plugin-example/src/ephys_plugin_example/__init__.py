"""A worked example of a third-party ephys plugin."""

__version__ = "0.1.0"
