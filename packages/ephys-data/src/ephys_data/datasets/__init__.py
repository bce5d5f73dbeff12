"""Datasets over prepared data, registered under the ``ephys.datasets`` entry-point group.

Building blocks: :mod:`~ephys_data.datasets.catalog` (sessions of several prepared roots),
:mod:`~ephys_data.datasets.layout` (one canonical channel layout across sites),
:mod:`~ephys_data.datasets.splits` (reproducible session/subject/data-set splits),
:mod:`~ephys_data.datasets.windows` (fixed-length windows), :mod:`~ephys_data.datasets.augment`
(training-only augmentations) and :mod:`~ephys_data.datasets.base` (the shared builder).
Items are numpy arrays; PyTorch's default collate turns them into tensors.
"""
