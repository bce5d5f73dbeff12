"""The registered dataset components: one per item format models consume.

============================  ================================================================
name                          item ``(inputs, targets)``
============================  ================================================================
``continuous_next_step``      ``x[:, :T]`` float32 ``(C, T)``, ``x[:, 1:]`` ``(C, T)``
``tokens_next_step``          codes from disk (a tokenizer's or mu-law), int64 ``(C, T)`` pairs
``mulaw_next_step``           signals mu-law encoded on the fly, int64 ``(C, T)`` pairs
``reconstruction``            ``{"x", "pos", "ch_type"}``, ``x``: signal with sensor geometry
``sensor_image``              ``(H, W, T)`` sensor grid (exact inverse in ``data_spec``)
``interpolated_image``        ``(1, T, H, W)`` Gaussian-interpolated frames, reconstruction
``video``                     ``(T, C, 1)`` token "video" layout, reconstruction
============================  ================================================================

Every one accepts the shared options of :class:`~ephys_data.datasets.base.WindowedConfig`:
several roots, channel subsets, condition labels (``inputs["condition"]``), subject indices
(``inputs["subject"]``), presence-masked targets and training-only augmentations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from ephys_core.errors import ConfigError
from ephys_core.protocols import Segment
from ephys_data.datasets.base import WindowedBuilder, WindowedConfig
from ephys_data.datasets.catalog import SessionEntry
from ephys_data.datasets.images import GaussianInterpolator, SensorGrid
from ephys_tokenizers import mulaw

__all__ = [
    "ContinuousNextStep",
    "InterpolatedImage",
    "MuLawNextStep",
    "Reconstruction",
    "SensorImage",
    "TokensNextStep",
    "Video",
]


def _vocab_from_transforms(builder: WindowedBuilder) -> int:
    mus = {
        int(t["mu"])
        for e in builder.catalog.entries
        for t in e.session.meta.get("transforms", [])
        if t.get("kind") == "mulaw"
    }
    if len(mus) != 1:
        raise ConfigError(f"roots: sessions were mu-law encoded with different mu {sorted(mus)}")
    return mus.pop() + 1


class ContinuousNextStep(WindowedBuilder):
    """Continuous next-step pairs: predict the signal one sample ahead."""

    codes_on_disk: ClassVar[bool | None] = False

    def make_item(self, x: np.ndarray, split: str) -> tuple[Any, Any]:
        return x[:, :-1], x[:, 1:]


def _dataset_tokenizer(builder: WindowedBuilder) -> Any:
    """The tokenizer artifact a code dataset carries (``ephys tokenizer encode``), restricted
    to the builder's channels, or ``None`` for data mu-law encoded while preprocessing."""
    from ephys_data.encoding import TOKENIZER_FOLDER, tokenizer_entry
    from ephys_tokenizers.artifact import load_tokenizer

    entries = {e.key: tokenizer_entry(dict(e.session.meta)) for e in builder.catalog.entries}
    encoded = {k for k, v in entries.items() if v is not None}
    if not encoded:
        return None
    if len(encoded) != len(entries):
        plain = sorted(set(entries) - encoded)
        raise ConfigError(
            f"roots: sessions {plain[:3]} hold mu-law codes from preprocessing, others codes of "
            "a tokenizer; use one kind of codes"
        )
    identities = {v["identity"] for v in entries.values() if v is not None}
    if len(identities) != 1:
        raise ConfigError(
            f"roots: the sessions were encoded by different tokenizers {sorted(identities)}"
        )
    (identity,) = identities
    artifact = None
    for entry in builder.catalog.entries:
        folder = entry.session.path.parent.parent / TOKENIZER_FOLDER
        if artifact is None or artifact.folder != folder:
            artifact = load_tokenizer(folder)
        if artifact.identity != identity:
            raise ConfigError(
                f"roots: {folder} holds tokenizer {artifact.identity}, but the sessions were "
                f"encoded by {identity}"
            )
    return artifact


class TokensNextStep(WindowedBuilder):
    """Next-step code pairs read from disk: a code dataset written by ``ephys tokenizer
    encode`` (decoded through the tokenizer it carries), or data mu-law encoded during
    preprocessing (the ``mulaw`` stage)."""

    codes_on_disk: ClassVar[bool | None] = True

    def __init__(self, config: WindowedConfig) -> None:
        super().__init__(config)
        self.artifact = _dataset_tokenizer(self)
        self.codec = None
        if self.artifact is not None:
            tokenizer = self.artifact.tokenizer
            select = getattr(tokenizer, "channels", None)
            if callable(select):  # per-channel codes: decode with the channels read here
                orders = {
                    tuple(t["source_ch_names"])
                    for e in self.catalog.entries
                    for t in e.session.meta["transforms"]
                    if t.get("kind") == "tokenizer"
                }
                if len(orders) != 1:
                    raise ConfigError("roots: the sessions were encoded with different channels")
                names = list(orders.pop())
                tokenizer = select([names.index(n) for n in self.ch_names])
            self.codec = tokenizer

    @classmethod
    def encode_signals(
        cls, tokenizer: Any, roots: Any, out_dir: Any, *, on_event: Any = None
    ) -> Any:
        """Encode prepared signals into a code dataset this dataset reads (resumable): what
        ``ephys train`` does with ``data.tokenizer``. See
        :func:`ephys_data.encoding.encode_dataset`."""
        from ephys_data.encoding import encode_dataset

        return encode_dataset(tokenizer, roots, out_dir, on_event=on_event)

    def to_tokens(self, x: np.ndarray, segment: Segment) -> np.ndarray:
        """Raw segment -> int64 codes (they are codes already)."""
        return np.asarray(x, dtype=np.int64)

    def _mulaw(self, segment: Segment) -> tuple[int, float]:
        """``(mu, amplitude)`` of the session's mu-law encoding."""
        entry: SessionEntry = segment.entry
        (transform,) = [
            t for t in entry.session.meta.get("transforms", []) if t.get("kind") == "mulaw"
        ]
        if transform.get("amplitude") is None:
            raise ConfigError(f"{entry.key}: the mu-law amplitude was not stored (legacy data)")
        return int(transform["mu"]), float(transform["amplitude"])

    def to_signal(self, codes: Any, segment: Segment) -> np.ndarray:
        """Codes -> signal in the units the codes were made from."""
        if self.codec is not None:
            return np.asarray(self.codec.decode(np.asarray(codes)[None]), dtype=np.float64)[0]
        mu, amplitude = self._mulaw(segment)
        return mulaw.decode(np.asarray(codes), mu) * amplitude

    def encode_signal(self, signal: Any, segment: Segment) -> np.ndarray:
        """Signal in those units -> int64 codes (as the dataset's codes were made)."""
        if self.codec is not None:
            return np.asarray(self.codec.encode(np.asarray(signal)[None]), dtype=np.int64)[0]
        mu, amplitude = self._mulaw(segment)
        return mulaw.encode(np.asarray(signal) / amplitude, mu).astype(np.int64)

    def bin_edges(self, segment: Segment) -> np.ndarray:
        """The signal values separating the codes: ``(V + 1,)``, or ``(C, V + 1)`` for
        per-channel bins."""
        if self.codec is not None:
            edges = getattr(self.codec, "bin_edges", None)
            if not callable(edges):
                raise ConfigError(
                    f"tokenizer {self.artifact.name}: its codes are not bins of the signal, "
                    "so they have no bin edges"
                )
            return np.asarray(edges())
        mu, amplitude = self._mulaw(segment)
        return mulaw.bin_edges(mu) * amplitude

    def make_item(self, x: np.ndarray, split: str) -> tuple[Any, Any]:
        codes = x.astype(np.int64)
        return codes[:, :-1], codes[:, 1:]

    def extra_spec(self) -> Mapping[str, Any]:
        if self.artifact is not None:
            return {
                "vocab_size": int(self.artifact.tokenizer.vocab_size),
                "codes": self.artifact.name,
                "tokenizer": self.artifact.describe(),
                # residual-quantiser levels of a learned tokenizer's rows (level-major)
                "code_levels": int(getattr(self.artifact.tokenizer, "code_levels", 1)),
            }
        return {"vocab_size": _vocab_from_transforms(self), "codes": "mulaw"}


class MuLawConfig(WindowedConfig):
    """Windowed dataset options plus the on-the-fly mu-law parameters."""

    mu: int = Field(255, ge=1, le=65535, description="Codes are 0..mu.")
    amplitude: float = Field(
        5.0, gt=0, description="Amplitude mapped to the extreme codes, in the data's units."
    )


class MuLawNextStep(WindowedBuilder):
    """Next-step token pairs from continuous data, mu-law encoded on the fly.

    Augmentations act on the signal before it is quantised.
    """

    Config = MuLawConfig
    codes_on_disk: ClassVar[bool | None] = False
    _mix_in_signal_space = False

    def make_item(self, x: np.ndarray, split: str) -> tuple[Any, Any]:
        if self._mix_in_signal_space and split == "train":  # mixup quantises after mixing
            return x[:, :-1], x[:, 1:]
        codes = self.quantize(x)
        return codes[:, :-1], codes[:, 1:]

    def quantize(self, x: Any) -> Any:
        """Signal -> int64 codes (numpy arrays or torch tensors)."""
        codes = mulaw.encode(x / self.config.amplitude, self.config.mu)
        return codes.astype(np.int64) if isinstance(codes, np.ndarray) else codes

    def to_tokens(self, x: np.ndarray, segment: Segment) -> np.ndarray:
        """Raw segment -> int64 codes."""
        return self.quantize(np.asarray(x))

    def to_signal(self, codes: Any, segment: Segment) -> np.ndarray:
        """Codes -> signal in the dataset's units."""
        return mulaw.decode(np.asarray(codes), self.config.mu) * self.config.amplitude

    def encode_signal(self, signal: Any, segment: Segment) -> np.ndarray:
        """Signal in the dataset's units -> int64 codes (as the items are quantised)."""
        return self.quantize(np.asarray(signal))

    def bin_edges(self, segment: Segment) -> np.ndarray:
        """The signal values separating the codes."""
        return mulaw.bin_edges(self.config.mu) * self.config.amplitude

    def collate_fn(self, mixup: Any) -> Any:
        """Mixup in signal space: windows stay continuous and are quantised after mixing."""
        if mixup is None:
            return None
        from ephys_data.collate import mixup_collate

        self._mix_in_signal_space = True
        return mixup_collate(
            mixup.alpha, mixup.prob, quantize=self.quantize, seed=self.config.split.seed
        )

    def extra_spec(self) -> Mapping[str, Any]:
        return {
            "vocab_size": self.config.mu + 1,
            "codes": "mulaw",
            "tokenizer": {
                "name": "mulaw",
                "params": {"mu": self.config.mu, "amplitude": self.config.amplitude},
            },
        }


class ReconstructionConfig(WindowedConfig):
    """Windowed dataset options plus the sensor geometry given to the model."""

    geometry: Literal["2d", "3d"] = Field(
        "2d", description="`2d`: layout positions (C, 2); `3d`: position + orientation (C, 6)."
    )


class Reconstruction(WindowedBuilder):
    """Reconstruction inputs ``{"x": (C, T), "pos": ..., "ch_type": (C,)}`` with target ``x``.

    For tokenizers and autoencoders; ``geometry: 3d`` gives each sensor's 3-D position and
    orientation (for sensor-aware encoders).
    """

    Config = ReconstructionConfig
    shift: ClassVar[int] = 0
    codes_on_disk: ClassVar[bool | None] = False

    def __init__(self, config: ReconstructionConfig) -> None:
        super().__init__(config)
        if config.geometry == "3d":
            if self.layout.pos_3d is None or self.layout.ori_3d is None:
                raise ConfigError("geometry: `3d` needs sensor positions and orientations")
            pos = np.concatenate([self.layout.pos_3d, self.layout.ori_3d], axis=1)
        else:
            if self.layout.pos_2d is None:
                raise ConfigError("geometry: the data has no sensor positions")
            pos = self.layout.pos_2d
        self.pos = self._pick(pos).astype(np.float32)
        self.type_ids = self._pick(self.layout.type_ids())

    def make_item(self, x: np.ndarray, split: str) -> tuple[Any, Any]:
        return {"x": x, "pos": self.pos, "ch_type": self.type_ids}, x


class ImageConfig(WindowedConfig):
    """Windowed dataset options plus the image layout."""

    image_size: int = Field(32, ge=2, description="Image side length in pixels.")
    target: Literal["next_step", "reconstruction"] = Field(
        "next_step", description="Predict the next frame, or reconstruct the window."
    )


class SensorImage(WindowedBuilder):
    """Sensor images ``(H, W, T)``: each channel on its own pixel, others at ``fill_value``.

    ``data_spec()["grid"]`` holds the pixel of every channel, the exact inverse back to
    channels. Works on signals or on mu-law codes.
    """

    Config = ImageConfig
    is_image: ClassVar[bool] = True

    def __init__(self, config: ImageConfig) -> None:
        self.shift = 1 if config.target == "next_step" else 0
        super().__init__(config)
        if self.layout.pos_2d is None:
            raise ConfigError("sensor_image: the data has no sensor positions")
        self.grid = SensorGrid.from_positions(self._pick(self.layout.pos_2d), config.image_size)

    def augment(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        image = self.grid.to_image(x, self.config.fill_value)
        return self.grid.to_channels(super().augment(image, rng))

    def make_item(self, x: np.ndarray, split: str) -> tuple[Any, Any]:
        image = self.grid.to_image(
            x.astype(np.int64) if self.catalog.is_codes else x, self.config.fill_value
        )
        if self.shift:
            return image[..., :-1], image[..., 1:]
        return image, image

    def extra_spec(self) -> Mapping[str, Any]:
        spec: dict[str, Any] = {
            "image_size": self.config.image_size,
            "grid": {"rows": self.grid.rows.tolist(), "cols": self.grid.cols.tolist()},
        }
        if self.catalog.is_codes:
            spec["vocab_size"] = _vocab_from_transforms(self)
        return spec


class InterpolatedConfig(WindowedConfig):
    """Windowed dataset options plus the interpolation."""

    image_size: int = Field(32, ge=2, description="Image side length in pixels.")
    sigma_scale: float = Field(
        0.75, gt=0, description="Kernel width as a multiple of the median sensor spacing."
    )


class InterpolatedImage(WindowedBuilder):
    """Dense frames ``(1, T, H, W)`` interpolated from channels with Gaussian kernels.

    The builder's ``interpolator.to_channels`` maps frames back to channels.
    """

    Config = InterpolatedConfig
    shift: ClassVar[int] = 0
    codes_on_disk: ClassVar[bool | None] = False

    def __init__(self, config: InterpolatedConfig) -> None:
        super().__init__(config)
        if self.layout.pos_2d is None:
            raise ConfigError("interpolated_image: the data has no sensor positions")
        self.interpolator = GaussianInterpolator.from_positions(
            self._pick(self.layout.pos_2d), config.image_size, config.sigma_scale
        )

    def make_item(self, x: np.ndarray, split: str) -> tuple[Any, Any]:
        frames = self.interpolator.to_image(x)[None]
        return frames, frames

    def extra_spec(self) -> Mapping[str, Any]:
        return {"image_size": self.config.image_size, "sigma_pixels": self.interpolator.sigma}


class Video(WindowedBuilder):
    """Tokens in the ``(T, C, 1)`` "video" layout (time, height = channels, width = 1).

    Needs mu-law codes on disk; the model shifts targets itself (reconstruction pairs).
    """

    shift: ClassVar[int] = 0
    codes_on_disk: ClassVar[bool | None] = True

    def make_item(self, x: np.ndarray, split: str) -> tuple[Any, Any]:
        video = np.ascontiguousarray(x.astype(np.int64).T[:, :, None])
        return video, video

    def extra_spec(self) -> Mapping[str, Any]:
        return {"vocab_size": _vocab_from_transforms(self), "layout": "time,channel,1"}
