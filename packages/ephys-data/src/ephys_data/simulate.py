"""Realistic MEG for demos, tests and benchmarks: OSL-ephys's simulation from real MEGIN data.

OSL-ephys ships a multivariate autoregressive model fitted to a real 306-channel MEGIN
recording (magnetometers and gradiometers modelled separately, 150 Hz); sampling from it gives
data with realistic spectra and spatial covariance. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

from ephys_core.errors import MissingDependencyError
from ephys_core.logging import get_logger

__all__ = ["simulate_meg"]

logger = get_logger(__name__)

#: sampling frequency of OSL-ephys's MEGIN template model
TEMPLATE_SFREQ = 150.0


def simulate_meg(
    path: str | Path, seconds: float, seed: int = 0, noise: float | None = None
) -> Path:
    """Simulate ``seconds`` of 306-channel MEGIN data and save it as a FIF file.

    Parameters
    ----------
    path
        Output ``.fif`` file (its folder is created).
    seconds
        Length of the recording.
    seed
        Seed of numpy's global generator, which OSL-ephys draws from.
    noise
        Extra white noise relative to the signal's scale (OSL-ephys's ``noise``).

    Returns
    -------
    Path
        The written file.
    """
    try:
        from osl_ephys.utils.simulate import simulate_raw_from_template
    except ImportError:
        raise MissingDependencyError(
            "simulating MEG", "osl-ephys", 'pip install "ephys-data[osl]"'
        ) from None
    import mne
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with mne.utils.use_log_level("error"):
            raw = simulate_raw_from_template(int(seconds * TEMPLATE_SFREQ), noise=noise)
            raw.save(path, overwrite=True)
    finally:
        np.random.set_state(state)
    logger.info("simulated %.0f s of 306-channel MEG into %s", seconds, path)
    return path
