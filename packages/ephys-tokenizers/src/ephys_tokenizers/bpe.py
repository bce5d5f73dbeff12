"""The ``bpe`` tokenizer: byte-pair encoding over the codes of a sample-wise tokenizer.

A base tokenizer (``quantile`` or ``mulaw``) turns each sample into a code; each code is one
character, and each run of ``group_size`` samples of one channel is one word. Byte-pair
encoding (Sennrich et al. 2016), trained with the Hugging Face ``tokenizers`` library on the
words of the training split, merges frequent runs of codes into single tokens, so a group
takes between 1 and ``group_size`` tokens. This is the text stage of LLM-style brain
modelling (codes as text, language-model vocabularies over them), and back.

Layout
------
The number of tokens per group varies, so :meth:`BPETokenizer.encode` returns a fixed grid
``(..., C * group_size, T // group_size)``: row ``c * group_size + j`` holds the ``j``-th token
of channel ``c``'s group at that step, and groups with fewer tokens are padded with
``pad_id`` (0), which decodes to nothing. :meth:`BPETokenizer.sequence` gives the ragged form
(the tokens without the padding, with their channel and step), what a language model reads;
:meth:`BPETokenizer.from_sequence` turns it back into the grid.

Causal at the group: the tokens of a step depend on that step's ``group_size`` samples only
(``time_stride = group_size``). Decoding is exact on the base codes, so the round-trip error
is the base tokenizer's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from ephys_core.components import Component, ComponentConfig
from ephys_tokenizers.mulaw import code_dtype

__all__ = ["BPETokenizer", "TokenSequence"]

#: base code k is the character chr(_FIRST_CHAR + k) (the Unicode private use area)
_FIRST_CHAR = 0xE000
_MAX_BASE_CODES = 0xF8FF - 0xE000 + 1
_PAD = "[PAD]"
_BASE = "base/"
_MERGES = "bpe/tokenizer_json"


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


@dataclass(frozen=True)
class TokenSequence:
    """The ragged form of BPE codes of one ``(C, T)`` signal: the tokens in reading order
    (step by step, channel by channel within a step), each with its channel and step."""

    ids: np.ndarray  # (N,) int64 token ids, no padding
    channel: np.ndarray  # (N,) int64
    step: np.ndarray  # (N,) int64, in units of group_size samples
    n_channels: int
    n_steps: int


class BPETokenizer(Component):
    """Byte-pair encoding of a sample-wise tokenizer's codes (see the module documentation).

    ``fit`` takes training signals: one ``(C, T)`` array, a batch ``(..., C, T)``, or an
    iterable of ``(C, T)`` arrays; it fits the base tokenizer (if it needs fitting) and then
    the merges on every channel's groups. ``encode``/``decode`` work on ``(..., C, T)``, numpy
    or torch (returning the same kind).
    """

    class Config(ComponentConfig):
        base: str = Field(
            "quantile",
            description="The registered sample-wise tokenizer whose codes are merged "
            "(quantile or mulaw).",
        )
        base_params: dict[str, Any] = Field(
            default_factory=lambda: {"n_codes": 32},
            description="Parameters of the base tokenizer (few base codes make long runs to "
            "merge: 32 by default).",
        )
        vocab_size: int = Field(
            4096,
            ge=3,
            le=1 << 20,
            description="Largest vocabulary: the padding token, the base codes and merges.",
        )
        group_size: int = Field(
            16,
            ge=1,
            le=1024,
            description="Samples of one channel per word; merges never cross words, so this "
            "is the time stride of the codes.",
        )
        min_frequency: int = Field(
            2, ge=1, description="Fewest occurrences in the training words of a merged pair."
        )
        max_words: int = Field(
            500_000,
            ge=100,
            description="Training words (channel groups) the merges are learned from (a "
            "random subset when there are more).",
        )
        seed: int = Field(0, description="Seed of the subset of training words.")

        @model_validator(mode="after")
        def _vocab_above_base(self) -> BPETokenizer.Config:
            n_codes = self.base_params.get("n_codes")
            if n_codes is not None and int(n_codes) + 1 > self.vocab_size:
                raise ValueError(
                    f"vocab_size {self.vocab_size} cannot hold the padding token and the "
                    f"{int(n_codes)} base codes"
                )
            return self

    causal: ClassVar[bool] = True
    samplewise: ClassVar[bool] = False
    requires_fit: ClassVar[bool] = True
    #: the padding token of the grid layout; it decodes to nothing
    pad_id: ClassVar[int] = 0

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or self.Config()
        self.base = self._make_base()
        self._bpe: Any = None
        self._token_codes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _make_base(self) -> Any:
        from ephys_core.plugins import get_registry

        base = get_registry("tokenizers").create(self.config.base, dict(self.config.base_params))
        if not getattr(base, "samplewise", False):
            raise ValueError(
                f"bpe merges the codes of a sample-wise tokenizer (quantile, mulaw); "
                f"{self.config.base} is not one"
            )
        if int(base.vocab_size) > _MAX_BASE_CODES:
            raise ValueError(
                f"bpe maps each base code to a character; {self.config.base} has "
                f"{int(base.vocab_size)} codes, more than {_MAX_BASE_CODES}"
            )
        return base

    @classmethod
    def example_config(cls, workdir: Path | None = None) -> Config:
        return cls.Config(base="quantile", base_params={"n_codes": 16}, vocab_size=64, group_size=4)

    # -- properties -------------------------------------------------------------------------
    @property
    def time_stride(self) -> int:  # type: ignore[override]
        """Samples per code step: ``group_size``."""
        return self.config.group_size

    @property
    def fit_segment(self) -> int:
        """Contiguous samples the training data should come in: one group (the merges never
        cross groups, so groups drawn anywhere in the training split serve)."""
        return self.config.group_size

    @property
    def fitted(self) -> bool:
        return self._bpe is not None

    @property
    def vocab_size(self) -> int:
        """Tokens of the fitted vocabulary (at most ``config.vocab_size``), padding included."""
        return int(self._fitted().get_vocab_size())

    @property
    def roundtrip_tolerance(self) -> float | None:
        """The base tokenizer's: BPE itself is lossless."""
        return getattr(self.base, "roundtrip_tolerance", None)

    def _fitted(self) -> Any:
        if self._bpe is None:
            raise RuntimeError(
                "the bpe tokenizer is not fitted: call fit() on training data, or load a "
                "fitted one (`ephys tokenizer fit bpe ...` writes one)"
            )
        return self._bpe

    # -- words ------------------------------------------------------------------------------
    def _words(self, codes: np.ndarray) -> np.ndarray:
        """Base codes ``(..., G * S)`` -> ``(..., G)`` strings of ``S`` characters."""
        s = self.config.group_size
        chars = (codes.astype(np.uint32) + _FIRST_CHAR).astype("<u4")
        groups = chars.reshape(*chars.shape[:-1], chars.shape[-1] // s, s)
        flat = np.ascontiguousarray(groups).reshape(-1, s)
        return np.frombuffer(flat.tobytes(), dtype=f"<U{s}").reshape(groups.shape[:-1])

    def _base_codes(self, signal: Any) -> np.ndarray:
        codes = self.base.encode(np.asarray(signal))
        whole = codes.shape[-1] // self.config.group_size * self.config.group_size
        return np.asarray(codes[..., :whole])

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, signal: Any) -> BPETokenizer:
        """Fit the base tokenizer (when it needs it) and the merges; returns ``self``."""
        from tokenizers.models import BPE
        from tokenizers.trainers import BpeTrainer

        from tokenizers import Tokenizer

        pieces = self._training_pieces(signal)
        if getattr(self.base, "requires_fit", False):
            self.base.fit(pieces)
        words = np.concatenate([self._words(self._base_codes(p)).ravel() for p in pieces])
        if words.size == 0:
            raise ValueError(
                f"bpe: the training signal holds no whole group of {self.config.group_size} samples"
            )
        rng = np.random.default_rng(self.config.seed)
        if words.size > self.config.max_words:
            words = rng.choice(words, self.config.max_words, replace=False)
        alphabet = [chr(_FIRST_CHAR + k) for k in range(int(self.base.vocab_size))]
        trainer = BpeTrainer(
            vocab_size=max(self.config.vocab_size, len(alphabet) + 1),
            min_frequency=self.config.min_frequency,
            special_tokens=[_PAD],
            initial_alphabet=alphabet,
            limit_alphabet=len(alphabet),
            show_progress=False,
        )
        bpe = Tokenizer(BPE())
        bpe.train_from_iterator(words.tolist(), trainer=trainer, length=int(words.size))
        self._set_bpe(bpe)
        return self

    @staticmethod
    def _training_pieces(signal: Any) -> list[np.ndarray]:
        if isinstance(signal, np.ndarray) or _is_torch(signal):
            array = np.asarray(signal.detach().cpu().numpy() if _is_torch(signal) else signal)
            if array.ndim < 2:
                raise ValueError(f"bpe: fit takes (..., C, T) signals; got {array.shape}")
            return list(array.reshape(-1, *array.shape[-2:]))
        pieces = [np.asarray(p) for p in signal]
        if not pieces or any(p.ndim != 2 for p in pieces):
            raise ValueError("bpe: fit takes (C, T) arrays")
        return pieces

    def _set_bpe(self, bpe: Any) -> None:
        vocab = bpe.get_vocab()
        if vocab.get(_PAD) != self.pad_id:
            raise ValueError("bpe: the padding token must be token 0")
        size = bpe.get_vocab_size()
        strings = [""] * size
        for token, index in vocab.items():
            strings[index] = "" if token == _PAD else token
        lengths = np.array([len(t) for t in strings], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        joined = "".join(strings)
        table = np.frombuffer(joined.encode("utf-32-le"), dtype="<u4").astype(np.int64)
        self._bpe = bpe
        self._token_codes = (table - _FIRST_CHAR, starts, lengths)

    # -- codec ------------------------------------------------------------------------------
    def encode(self, signal: Any) -> Any:
        """``(..., C, T)`` -> ``(..., C * group_size, T // group_size)`` token grid (samples
        past the last whole group are dropped)."""
        bpe = self._fitted()
        as_torch = _is_torch(signal)
        x = signal.detach().cpu().numpy() if as_torch else np.asarray(signal)
        codes = self._base_codes(x)
        if codes.ndim < 2:
            raise ValueError(f"bpe: encode takes (..., C, T) signals; got {codes.shape}")
        *lead, c, t = codes.shape
        s = self.config.group_size
        words = self._words(codes)  # (..., C, G)
        grid = np.full((words.size, s), self.pad_id, dtype=np.int64)
        for row, encoding in enumerate(
            bpe.encode_batch(words.ravel().tolist(), add_special_tokens=False)
        ):
            grid[row, : len(encoding.ids)] = encoding.ids
        g = t // s
        grid = grid.reshape(*lead, c, g, s)
        grid = np.moveaxis(grid, -1, -2).reshape(*lead, c * s, g)
        if as_torch:
            import torch

            return torch.from_numpy(grid)
        return grid.astype(code_dtype(self.vocab_size))

    def decode(self, codes: Any) -> Any:
        """Token grid -> float32 ``(..., C, T)`` signal, through the base tokenizer."""
        self._fitted()
        as_torch = _is_torch(codes)
        k = np.asarray(codes.detach().cpu().numpy() if as_torch else codes).astype(np.int64)
        s = self.config.group_size
        if k.ndim < 2 or k.shape[-2] % s:
            raise ValueError(
                f"bpe codes have C * {s} rows (group_size {s} slots per channel); got shape "
                f"{k.shape}"
            )
        if k.size and (int(k.min()) < 0 or int(k.max()) >= self.vocab_size):
            raise ValueError(f"bpe codes must lie in [0, {self.vocab_size})")
        *lead, rows, g = k.shape
        c = rows // s
        slots = np.moveaxis(k.reshape(*lead, c, s, g), -2, -1)  # (..., C, G, S)
        base = self._expand(slots.reshape(-1, s)).reshape(*lead, c, g * s)
        out = np.asarray(self.base.decode(base.astype(code_dtype(self.base.vocab_size))))
        out = out.astype(np.float32)
        if as_torch:
            import torch

            return torch.from_numpy(out)
        return out

    def _expand(self, words: np.ndarray) -> np.ndarray:
        """``(W, S)`` token slots -> ``(W, S)`` base codes; every word must spell exactly
        ``S`` base codes."""
        assert self._token_codes is not None
        table, starts, lengths = self._token_codes
        s = self.config.group_size
        per_word = lengths[words].sum(axis=1)
        bad = np.flatnonzero(per_word != s)
        if bad.size:
            raise ValueError(
                f"bpe: {bad.size} group(s) of tokens do not spell {s} base codes (the first "
                f"spells {int(per_word[bad[0]])}); these are not codes of this tokenizer"
            )
        flat = words.ravel()
        n = lengths[flat]
        offsets = np.repeat(starts[flat] - (np.cumsum(n) - n), n)
        return table[np.arange(int(n.sum())) + offsets].reshape(words.shape[0], s)

    # -- the ragged form --------------------------------------------------------------------
    def sequence(self, codes: Any) -> TokenSequence:
        """The tokens of a ``(C * group_size, G)`` grid without the padding, step by step
        and channel by channel (what a language model over BPE tokens reads)."""
        k = np.asarray(codes).astype(np.int64)
        s = self.config.group_size
        if k.ndim != 2 or k.shape[0] % s:
            raise ValueError(f"bpe: sequence takes one (C * {s}, G) grid; got {k.shape}")
        c, g = k.shape[0] // s, k.shape[1]
        slots = k.reshape(c, s, g).transpose(2, 0, 1)  # (G, C, S): reading order
        keep = slots != self.pad_id
        step, channel, _ = np.nonzero(keep)
        return TokenSequence(slots[keep], channel, step, c, g)

    def from_sequence(self, sequence: TokenSequence) -> np.ndarray:
        """The grid of a :class:`TokenSequence` (the inverse of :meth:`sequence`)."""
        s = self.config.group_size
        grid = np.full((sequence.n_steps, sequence.n_channels, s), self.pad_id, np.int64)
        key = sequence.step * sequence.n_channels + sequence.channel
        if key.size and np.any(np.diff(key) < 0):
            raise ValueError("bpe: a token sequence must be in reading order (step, channel)")
        first = np.searchsorted(key, key, side="left")
        slot = np.arange(key.size) - first
        if slot.size and int(slot.max()) >= s:
            raise ValueError(f"bpe: a group holds more than {s} tokens")
        grid[sequence.step, sequence.channel, slot] = sequence.ids
        return grid.transpose(1, 2, 0).reshape(sequence.n_channels * s, sequence.n_steps)

    # -- persistence ------------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        """The base tokenizer's state and the merges (the tokenizer's JSON, as bytes)."""
        bpe = self._fitted()
        state = {
            _BASE + k: v
            for k, v in (self.base.state() if hasattr(self.base, "state") else {}).items()
        }
        state[_MERGES] = np.frombuffer(bpe.to_str().encode(), dtype=np.uint8).copy()
        return state

    def load_state(self, state: Mapping[str, np.ndarray]) -> None:
        from tokenizers import Tokenizer

        if _MERGES not in state:
            raise ValueError("bpe: the state holds no merges")
        base_state = {k[len(_BASE) :]: v for k, v in state.items() if k.startswith(_BASE)}
        if base_state:
            self.base.load_state(base_state)
        self._set_bpe(Tokenizer.from_str(np.asarray(state[_MERGES]).tobytes().decode()))

    def example_input(self, batch_size: int = 2) -> np.ndarray:
        """The base tokenizer's example, cut to whole groups."""
        x = np.asarray(self.base.example_input(batch_size))
        return x[..., : x.shape[-1] // self.config.group_size * self.config.group_size]
