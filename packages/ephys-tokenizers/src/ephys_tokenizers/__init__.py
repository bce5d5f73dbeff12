"""Tokenizers for MEG/EEG signals: mu-law today; vector quantisers and learned tokenizers to come."""

__version__ = "0.1.0"
