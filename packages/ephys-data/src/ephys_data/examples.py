"""Small synthetic recordings for examples, documentation and the conformance suite.

They are generated, never downloaded. For realistic MEG use :mod:`ephys_data.simulate`, which
draws from OSL-ephys's model of real MEGIN data.
"""

from __future__ import annotations

import numpy as np

from ephys_data.recording import Recording

__all__ = [
    "example_meg_raw",
    "example_meg_recording",
    "example_raw",
    "example_recording",
    "icosphere",
    "write_synthetic_subject",
]


def example_raw(
    seconds: float = 10.0, sfreq: float = 200.0, seed: int = 0, line_freq: float = 50.0
):
    """An MNE ``RawArray`` of 32 EEG channels (standard 10-20 positions), in volts.

    The signal is 1/f background plus a 10 Hz alpha rhythm over posterior channels and a small
    line-noise component at ``line_freq`` Hz, so filters and detectors have something to do.
    """
    import warnings

    import mne

    with warnings.catch_warnings():
        # MNE 1.13 deprecates the name (to be removed in 1.14); the positions are unchanged
        warnings.simplefilter("ignore", FutureWarning)
        montage = mne.channels.make_standard_montage("standard_1020")
    names = [
        "Fp1",
        "Fp2",
        "F7",
        "F3",
        "Fz",
        "F4",
        "F8",
        "FC5",
        "FC1",
        "FC2",
        "FC6",
        "T7",
        "C3",
        "Cz",
        "C4",
        "T8",
        "CP5",
        "CP1",
        "CP2",
        "CP6",
        "P7",
        "P3",
        "Pz",
        "P4",
        "P8",
        "PO9",
        "O1",
        "Oz",
        "O2",
        "PO10",
        "AF3",
        "AF4",
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


# -- MEG ------------------------------------------------------------------------------------------
#: Centre of the synthetic helmet and brain (head frame = device frame, metres).
_CENTER = np.array([0.0, 0.0, 0.04])


def _fibonacci_cap(n: int, min_z: float) -> np.ndarray:
    """``n`` nearly uniform unit vectors with ``z >= min_z``."""
    golden = np.pi * (3.0 - np.sqrt(5.0))
    z = np.linspace(1.0, min_z, n)
    radius = np.sqrt(1.0 - z**2)
    angle = golden * np.arange(n)
    return np.stack([radius * np.cos(angle), radius * np.sin(angle), z], axis=1)


def _dipole_field(sensors: np.ndarray, normals: np.ndarray, dipoles: np.ndarray) -> np.ndarray:
    """Normal magnetic field at ``sensors`` of unit magnetic dipoles (x, y, z) at ``dipoles``.

    Returns ``(n_sensors, 3 * n_dipoles)`` in tesla per A·m².
    """
    gain = np.empty((len(sensors), 3 * len(dipoles)))
    for k, p in enumerate(dipoles):
        d = sensors - p
        r = np.linalg.norm(d, axis=1, keepdims=True)
        u = d / r
        for axis in range(3):
            m = np.zeros(3)
            m[axis] = 1.0
            field = 1e-7 * (3 * (u @ m)[:, None] * u - m) / r**3
            gain[:, 3 * k + axis] = np.sum(field * normals, axis=1)
    return gain


def example_meg_raw(
    seconds: float = 10.0,
    sfreq: float = 200.0,
    seed: int = 0,
    heartbeat: bool = True,
    line_freq: float = 50.0,
):
    """A synthetic MEGIN-like ``RawArray``: 102 magnetometers and 204 planar gradiometers.

    Sensors sit on a helmet around a head with digitised fiducials and head-shape points, so
    Maxwell filtering, ICA and source projection run on it. The signal is the field of a few
    oscillating dipoles inside the head (1/f background and a 10 Hz rhythm), a uniform
    external field at ``line_freq`` Hz (interference that SSS removes), a heartbeat from a
    dipole below the head when ``heartbeat`` is set, and sensor noise. Channels are named as
    on a MEGIN system (``MEG0111`` magnetometer, ``MEG0112``/``MEG0113`` gradiometers).
    """
    import mne

    rng = np.random.default_rng(seed)
    n_loc = 102
    normals = _fibonacci_cap(n_loc, -0.35)
    positions = _CENTER + 0.115 * normals
    names, types, locs = [], [], []
    for i, (pos, ez) in enumerate(zip(positions, normals, strict=True)):
        ex = np.cross([0.0, 0.0, 1.0], ez)
        ex = ex / np.linalg.norm(ex) if np.linalg.norm(ex) > 1e-6 else np.array([1.0, 0, 0])
        ey = np.cross(ez, ex)
        for suffix, kind, frame in (
            ("1", "mag", (ex, ey)),
            ("2", "grad", (ex, ey)),
            ("3", "grad", (ey, -ex)),
        ):
            names.append(f"MEG{i + 1:03d}{suffix}")
            types.append(kind)
            locs.append(np.concatenate([pos, frame[0], frame[1], ez]))
    info = mne.create_info(names, sfreq, types)
    for ch, loc in zip(info["chs"], locs, strict=True):
        ch["loc"][:12] = loc
    info["dev_head_t"] = mne.transforms.Transform("meg", "head")  # helmet = head frame
    locs = np.asarray(locs)
    n_times = int(round(seconds * sfreq))
    t = np.arange(n_times) / sfreq

    # brain: magnetic dipoles inside the head
    dipoles = _CENTER + 0.05 * _fibonacci_cap(12, -0.3)
    sources = np.fft.irfft(
        np.fft.rfft(rng.standard_normal((36, n_times)), axis=1)
        / np.sqrt(np.maximum(np.fft.rfftfreq(n_times, 1 / sfreq), 1.0)),
        n=n_times,
        axis=1,
    )
    sources[:6] += 3 * np.sin(2 * np.pi * 10.0 * t + rng.uniform(0, 6.28, (6, 1)))
    data = _sensor_response(locs, types, dipoles) @ sources
    data *= 3e-13 / data[np.array(types) == "mag"].std()
    # interference: uniform field (reaches magnetometers only)
    b0 = rng.standard_normal(3)
    b0 = 2e-12 * b0 / np.linalg.norm(b0)
    uniform = np.where(np.array(types) == "mag", locs[:, 9:12] @ b0, 0.0)
    data += uniform[:, None] * np.sin(2 * np.pi * line_freq * t)
    if heartbeat:
        heart = np.array([[0.0, -0.03, -0.2]])
        beat = np.zeros(n_times)
        period = int(round(sfreq * 60 / 68))  # 68 beats per minute
        for start in range(int(0.3 * sfreq), n_times, period):
            width = max(2, int(0.02 * sfreq))
            stop = min(n_times, start + 2 * width)
            beat[start:stop] = np.hanning(2 * width)[: stop - start]
        moment = np.array([0.0, 0.4, 1.0])
        cardiac = _sensor_response(locs, types, heart) @ np.outer(moment, beat)
        data += cardiac * (4e-12 / np.abs(cardiac[np.array(types) == "mag"]).max())
    scale = np.where(np.array(types) == "mag", 2e-14, 5e-13)
    data += scale[:, None] * rng.standard_normal(data.shape)

    raw = mne.io.RawArray(data, info, verbose="error")
    raw.set_meas_date(1_600_000_000)
    hsp = _CENTER + 0.09 * _fibonacci_cap(40, 0.0)
    montage = mne.channels.make_dig_montage(
        nasion=[0.0, 0.1, 0.0],
        lpa=[-0.08, 0.0, 0.0],
        rpa=[0.08, 0.0, 0.0],
        hsp=hsp,
        coord_frame="head",
    )
    raw.set_montage(montage, verbose="error")
    raw.info["line_freq"] = line_freq
    return raw


def _sensor_response(locs: np.ndarray, types: list[str], dipoles: np.ndarray) -> np.ndarray:
    """Gain of magnetometers (field) and planar gradiometers (field difference / baseline)."""
    baseline = 0.0168
    gain = np.empty((len(locs), 3 * len(dipoles)))
    is_mag = np.array(types) == "mag"
    pos, ex, ez = locs[:, :3], locs[:, 3:6], locs[:, 9:12]
    gain[is_mag] = _dipole_field(pos[is_mag], ez[is_mag], dipoles)
    g = ~is_mag
    plus = _dipole_field(pos[g] + baseline / 2 * ex[g], ez[g], dipoles)
    minus = _dipole_field(pos[g] - baseline / 2 * ex[g], ez[g], dipoles)
    gain[g] = (plus - minus) / baseline
    return gain


def example_meg_recording(
    seconds: float = 10.0, sfreq: float = 200.0, seed: int = 0, heartbeat: bool = True
) -> Recording:
    """:func:`example_meg_raw` as an MNE-backed :class:`Recording` named ``example_meg``."""
    return Recording.from_raw(
        example_meg_raw(seconds, sfreq, seed, heartbeat), name="example_meg", subject="01"
    )


# -- anatomy --------------------------------------------------------------------------------------
def icosphere(grade: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit sphere from an icosahedron subdivided ``grade`` times (``10 * 4**grade + 2`` points).

    Returns vertices ``(N, 3)`` and triangles ``(20 * 4**grade, 3)`` ordered counter-clockwise
    seen from outside (outward normals), as FreeSurfer and MNE expect.
    """
    phi = (1 + 5**0.5) / 2
    rr = np.array(
        [
            [-1, phi, 0],
            [1, phi, 0],
            [-1, -phi, 0],
            [1, -phi, 0],
            [0, -1, phi],
            [0, 1, phi],
            [0, -1, -phi],
            [0, 1, -phi],
            [phi, 0, -1],
            [phi, 0, 1],
            [-phi, 0, -1],
            [-phi, 0, 1],
        ],
        dtype=float,
    )
    tris = np.array(
        [
            [0, 11, 5],
            [0, 5, 1],
            [0, 1, 7],
            [0, 7, 10],
            [0, 10, 11],
            [1, 5, 9],
            [5, 11, 4],
            [11, 10, 2],
            [10, 7, 6],
            [7, 1, 8],
            [3, 9, 4],
            [3, 4, 2],
            [3, 2, 6],
            [3, 6, 8],
            [3, 8, 9],
            [4, 9, 5],
            [2, 4, 11],
            [6, 2, 10],
            [8, 6, 7],
            [9, 8, 1],
        ]
    )
    points = list(rr / np.linalg.norm(rr, axis=1, keepdims=True))
    for _ in range(grade):
        midpoints: dict[tuple[int, int], int] = {}
        new = []
        for a, b, c in tris:
            corners = []
            for u, v in ((a, b), (b, c), (c, a)):
                key = (min(u, v), max(u, v))
                if key not in midpoints:
                    m = points[u] + points[v]
                    points.append(m / np.linalg.norm(m))
                    midpoints[key] = len(points) - 1
                corners.append(midpoints[key])
            ab, bc, ca = corners
            new.extend([[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]])
        tris = np.array(new)
    rr = np.array(points)
    normals = np.cross(rr[tris[:, 1]] - rr[tris[:, 0]], rr[tris[:, 2]] - rr[tris[:, 0]])
    inward = np.einsum("ij,ij->i", normals, rr[tris].mean(axis=1)) < 0
    tris[inward] = tris[inward][:, ::-1]
    return rr, tris


def write_synthetic_subject(subjects_dir, subject: str = "fsaverage", grade: int = 3):
    """Write a tiny FreeSurfer-style subject for source projection without real anatomy.

    Geometry roughly follows fsaverage's MRI coordinates (the fiducials are fsaverage's, from
    MNE's own data), but every surface is a slightly bumpy icosahedral sphere of subdivision
    ``grade``:

    * ``surf/{lh,rh}.white`` and ``.sphere``: one sphere per hemisphere (the "cortex");
    * ``bem/inner_skull.surf``, ``outer_skull.surf`` and ``outer_skin.surf``: the BEM
      surfaces (one layer for MEG, three for EEG) and the scalp used by coregistration;
    * ``bem/<subject>-fiducials.fif``: MRI fiducials for coregistration;
    * ``label/{lh,rh}.aparc.annot``: four parcels per hemisphere (anterior/posterior ×
      superior/inferior) plus a medial ``unknown`` parcel, as in Desikan-Killiany files.

    Nothing is downloaded. Returns the subject's folder.
    """
    from pathlib import Path

    import mne

    root = Path(subjects_dir) / subject
    for folder in ("surf", "bem", "label", "mri"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    unit, tris = icosphere(grade)
    # a smooth bump keeps the points off a common sphere, which would make the Delaunay
    # triangulations MNE uses for inside/outside tests degenerate (and very slow)
    bumpy = unit * (1 + 0.04 * unit[:, :1] * unit[:, 1:2] + 0.03 * unit[:, 2:3] ** 3)

    def write(path, center, radius, shape=bumpy):
        mne.write_surface(
            str(path), (np.asarray(center) + radius * shape) * 1000.0, tris, overwrite=True
        )

    head_center = (0.0, -0.02, 0.006)  # nested surfaces share centre and shape
    write(root / "bem" / "inner_skull.surf", head_center, 0.075)
    write(root / "bem" / "outer_skull.surf", head_center, 0.083)
    write(root / "bem" / "outer_skin.surf", head_center, 0.095)
    labels = []
    for hemi, x in (("lh", -0.034), ("rh", 0.034)):
        center = np.array([x, -0.02, 0.01])
        write(root / "surf" / f"{hemi}.white", center, 0.032)
        write(root / "surf" / f"{hemi}.sphere", (0.0, 0.0, 0.0), 0.1, unit)
        medial = unit[:, 0] * np.sign(-x) > 0.85
        parcels = {
            "unknown": medial,
            "anteriorsuperior": ~medial & (unit[:, 1] >= 0) & (unit[:, 2] >= 0),
            "anteriorinferior": ~medial & (unit[:, 1] >= 0) & (unit[:, 2] < 0),
            "posteriorsuperior": ~medial & (unit[:, 1] < 0) & (unit[:, 2] >= 0),
            "posteriorinferior": ~medial & (unit[:, 1] < 0) & (unit[:, 2] < 0),
        }
        for name, mask in parcels.items():
            vertices = np.flatnonzero(mask)
            labels.append(
                mne.Label(
                    vertices,
                    pos=center + 0.032 * bumpy[vertices],
                    hemi=hemi,
                    name=f"{name}-{hemi}",
                    subject=subject,
                )
            )
    mne.write_labels_to_annot(
        labels,
        subject=subject,
        parc="aparc",
        subjects_dir=subjects_dir,
        overwrite=True,
        verbose="error",
    )
    fiducials, frame = mne.io.read_fiducials(
        Path(mne.__file__).parent / "data" / "fsaverage" / "fsaverage-fiducials.fif"
    )
    mne.io.write_fiducials(
        root / "bem" / f"{subject}-fiducials.fif", fiducials, frame, overwrite=True, verbose="error"
    )
    return root
