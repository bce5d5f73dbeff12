"""Small synthetic recordings for examples, documentation and the conformance suite.

They are generated, never downloaded. For realistic MEG use :mod:`ephys_data.simulate`, which
draws from OSL-ephys's model of real MEGIN data.
"""

from __future__ import annotations

import numpy as np

from ephys_data.recording import Recording

__all__ = ["example_raw", "example_recording"]


def example_raw(seconds: float = 10.0, sfreq: float = 200.0, seed: int = 0, line_freq: float = 50.0):
    """An MNE ``RawArray`` of 32 EEG channels (standard 10-20 positions), in volts.

    The signal is 1/f background plus a 10 Hz alpha rhythm over posterior channels and a small
    line-noise component at ``line_freq`` Hz, so filters and detectors have something to do.
    """
    import mne

    montage = mne.channels.make_standard_montage("standard_1020")
    names = [
        "Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "FC5", "FC1", "FC2", "FC6", "T7", "C3", "Cz",
        "C4", "T8", "CP5", "CP1", "CP2", "CP6", "P7", "P3", "Pz", "P4", "P8", "PO9", "O1", "Oz",
        "O2", "PO10", "AF3", "AF4",
    ]
    rng = np.random.default_rng(seed)
    n_times = int(round(seconds * sfreq))
    spectrum = np.fft.rfft(rng.standard_normal((len(names), n_times)), axis=1)
    freqs = np.fft.rfftfreq(n_times, 1 / sfreq)
    spectrum /= np.sqrt(np.maximum(freqs, 1.0))
    data = np.fft.irfft(spectrum, n=n_times, axis=1)
    t = np.arange(n_times) / sfreq
    posterior = np.array([n.startswith(("O", "P")) for n in names], dtype=float)
    data += 2.0 * posterior[:, None] * np.sin(2 * np.pi * 10.0 * t + rng.uniform(0, 6.28))
    data += 0.3 * np.sin(2 * np.pi * line_freq * t)
    data *= 1e-5 / data.std()
    info = mne.create_info(names, sfreq, "eeg")
    raw = mne.io.RawArray(data, info, verbose="error")
    raw.set_montage(montage, verbose="error")
    return raw


def example_recording(seconds: float = 10.0, sfreq: float = 200.0, seed: int = 0) -> Recording:
    """:func:`example_raw` as an MNE-backed :class:`Recording` named ``example``."""
    return Recording.from_raw(example_raw(seconds, sfreq, seed), name="example", subject="01")
