"""Tokenizers for MEG/EEG signals: mu-law and quantile codes, tokenizer artifacts, and the
vector quantisers learned tokenizers are built from.

Everything is imported on first use, so ``import ephys_tokenizers`` stays cheap (and never
imports torch).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ephys_tokenizers.artifact import TokenizerArtifact, load_tokenizer, save_tokenizer
    from ephys_tokenizers.mulaw_tokenizer import MuLawTokenizer
    from ephys_tokenizers.quantile import QuantileTokenizer

__all__ = [
    "MuLawTokenizer",
    "QuantileTokenizer",
    "TokenizerArtifact",
    "load_tokenizer",
    "save_tokenizer",
]
__version__ = "0.1.0"

_WHERE = {
    "MuLawTokenizer": "ephys_tokenizers.mulaw_tokenizer",
    "QuantileTokenizer": "ephys_tokenizers.quantile",
    "TokenizerArtifact": "ephys_tokenizers.artifact",
    "load_tokenizer": "ephys_tokenizers.artifact",
    "save_tokenizer": "ephys_tokenizers.artifact",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
