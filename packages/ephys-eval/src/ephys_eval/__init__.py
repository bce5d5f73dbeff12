"""ephys-eval: evaluation of generated MEG/EEG signals, and the ephys quickstart."""

__version__ = "0.1.0"
