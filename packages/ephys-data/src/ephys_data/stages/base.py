"""What every preprocessing stage shares: construction from its config, state checks, examples."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from ephys_core.components import Component
from ephys_data.recording import Recording

__all__ = ["Stage"]


class Stage(Component):
    """Base class of ephys preprocessing stages: ``Recording -> Recording``.

    Subclasses define ``Config``, implement :meth:`apply`, and set ``requires`` to the
    recording state they work on (``"mne"``, ``"array"``, ``"unloaded"`` or ``"loaded"`` for
    either of the first two).
    """

    preserves_duration: ClassVar[bool] = True
    requires: ClassVar[str] = "mne"

    def __init__(self, config: BaseModel) -> None:
        self.config = config

    def __call__(self, recording: Recording) -> Recording:
        """Check the recording's state, then :meth:`apply` the stage."""
        if self.requires == "loaded":
            if recording.state == "unloaded":
                recording.require("array", type(self).__name__)
        else:
            recording.require(self.requires, type(self).__name__)
        return self.apply(recording)

    def apply(self, recording: Recording) -> Recording:
        """Return the processed recording; never modify ``recording``."""
        raise NotImplementedError

    def output_sfreq(self, sfreq: float) -> float:
        """Output sampling frequency for input ``sfreq`` (unchanged unless overridden)."""
        return sfreq

    def example_input(self, workdir: Path) -> Recording:
        """A short EEG recording with a standard montage, in the state this stage needs."""
        from ephys_data.examples import example_recording

        recording = example_recording()
        if self.requires == "array":
            recording = recording.with_data(recording.get_data())
        return recording
