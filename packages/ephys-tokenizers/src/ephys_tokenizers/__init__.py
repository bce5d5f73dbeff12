"""Tokenizers for MEG/EEG signals: mu-law today; vector quantisers and learned tokenizers to come.

``MuLawTokenizer`` is imported on first use, so ``import ephys_tokenizers`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ephys_tokenizers.mulaw_tokenizer import MuLawTokenizer

__all__ = ["MuLawTokenizer"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "MuLawTokenizer":
        from ephys_tokenizers.mulaw_tokenizer import MuLawTokenizer

        return MuLawTokenizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
