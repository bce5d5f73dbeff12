"""Data loading for training: the dataset component, loaders, and exact resumption.

The training loader draws a fresh permutation per epoch from ``(seed, epoch)``, shards it across
distributed ranks itself, and is *stateful*: the checkpoint stores how many batches of the
current epoch were trained, and a resumed run skips exactly those, so the data order continues
as if training had never stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sized
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Sampler

from ephys_core.config import DataSection

__all__ = ["EphysDataModule", "EpochSampler", "ResumableLoader"]


def _rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class EpochSampler(Sampler[int]):
    """A per-epoch permutation (or the natural order), sharded by rank, that can skip ahead.

    Parameters
    ----------
    n
        Dataset length.
    shuffle
        Permute per epoch (seeded by ``seed`` and the epoch).
    seed
        Base seed.
    with_epoch
        Yield ``(index, epoch)`` so the dataset can make augmentation depend on the epoch.
    """

    def __init__(self, n: int, shuffle: bool, seed: int, with_epoch: bool = False) -> None:
        self.n, self.shuffle, self.seed, self.with_epoch = n, shuffle, seed, with_epoch
        self.epoch = 0
        self._trainer_epoch = 0  # the last epoch number Lightning gave
        self._offset = 0  # this sampler's epoch minus the trainer's
        self._pending: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch with its epoch number."""
        self._trainer_epoch = epoch
        if self._pending is None:
            self.epoch = epoch + self._offset

    def skip(self, epoch: int, samples: int) -> None:
        """Make the next iteration epoch ``epoch``, starting after ``samples`` of this rank's
        samples; the epochs after it follow on.

        The trainer's own count may differ: after a checkpoint written at an epoch's end,
        Lightning resumes one epoch number ahead. The data order follows the epochs actually
        trained, so the trainer's number at that iteration is mapped onto ``epoch``.
        """
        self.epoch = epoch
        self._pending = (epoch, samples)

    def _order(self) -> list[int]:
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.n, generator=gen).tolist()
        else:
            order = list(range(self.n))
        rank, world = _rank_world()
        if world > 1:
            order += order[: (-len(order)) % world]  # pad so every rank gets as many
            order = order[rank::world]
        return order

    def __iter__(self) -> Iterator[int]:
        skip = 0
        if self._pending is not None:
            self.epoch, skip = self._pending
            self._offset = self.epoch - self._trainer_epoch
            self._pending = None
        order = self._order()[skip:]
        if self.with_epoch:
            return iter([(i, self.epoch) for i in order])
        return iter(order)

    def __len__(self) -> int:
        _, world = _rank_world()
        return (self.n + world - 1) // world  # ceil: ranks are padded to equal length


class ResumableLoader(DataLoader):
    """A DataLoader whose position within an epoch is saved in checkpoints.

    Parameters
    ----------
    dataset
        Map-style dataset.
    progress
        Returns the batches trained in the current epoch, from the trainer, when a checkpoint
        is written.
    seed, shuffle
        Passed to :class:`EpochSampler`.
    **kwargs
        DataLoader arguments (batch size, workers, collate function, ...).
    """

    def __init__(
        self,
        dataset: Sized,
        *,
        progress: Callable[[], int],
        seed: int,
        shuffle: bool = True,
        **kwargs: Any,
    ) -> None:
        self.epoch_sampler = EpochSampler(
            len(dataset), shuffle, seed, with_epoch=getattr(dataset, "accepts_epoch", False)
        )
        # a dedicated generator: creating an iterator must not draw from the global RNG,
        # whose state the checkpoint restores (dropout and other randomness of training)
        kwargs.setdefault("generator", torch.Generator().manual_seed(seed))
        super().__init__(dataset, sampler=self.epoch_sampler, **kwargs)  # type: ignore[arg-type]
        self._progress = progress

    def state_dict(self) -> dict[str, int]:
        """The epoch under way (the sampler's count) and the batches already trained in it."""
        return {"epoch": self.epoch_sampler.epoch, "batches": self._progress()}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume after ``state["batches"]`` batches of ``state["epoch"]``; at the start of
        the next epoch when those were all of its batches."""
        epoch, batches = int(state["epoch"]), int(state["batches"])
        if batches >= len(self):
            self.epoch_sampler.skip(epoch + 1, 0)
        else:
            self.epoch_sampler.skip(epoch, batches * (self.batch_size or 1))


class EphysDataModule(pl.LightningDataModule):
    """Train/val/test loaders over a dataset component.

    Parameters
    ----------
    builder
        The dataset component (``ephys.datasets``) instance.
    section
        The run configuration's ``data`` section.
    seed
        Seed of the shuffling.
    """

    def __init__(self, builder: Any, section: DataSection, seed: int) -> None:
        super().__init__()
        self.builder, self.section, self.seed = builder, section, seed
        self.batch_size = section.batch_size  # tuned in place by the batch-size finder

    def _kwargs(self) -> dict[str, Any]:
        s = self.section
        pin = s.pin_memory if s.pin_memory is not None else torch.cuda.is_available()
        kwargs: dict[str, Any] = {"num_workers": s.num_workers, "pin_memory": pin}
        if s.num_workers > 0:
            kwargs["persistent_workers"] = s.persistent_workers
            if s.prefetch_factor is not None:
                kwargs["prefetch_factor"] = s.prefetch_factor
        return kwargs

    def _progress(self) -> int:
        trainer = self.trainer
        if trainer is None:
            return 0
        return int(trainer.fit_loop.epoch_loop.batch_progress.current.ready)

    def train_dataloader(self) -> DataLoader:
        collate = None
        if self.section.mixup is not None and hasattr(self.builder, "collate_fn"):
            collate = self.builder.collate_fn(self.section.mixup)
        dataset = self.builder.build("train")
        # the batch-size finder may ask for more than the split holds; never exceed it
        self.batch_size = max(1, min(self.batch_size, len(dataset)))
        return ResumableLoader(
            dataset,
            progress=self._progress,
            seed=self.seed,
            batch_size=self.batch_size,
            drop_last=self.section.drop_last,
            collate_fn=collate,
            **self._kwargs(),
        )

    def _eval_loader(self, split: str) -> DataLoader | list:
        dataset = self.builder.build(split)
        if len(dataset) == 0:
            return []
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=False, **self._kwargs())

    def val_dataloader(self) -> DataLoader | list:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader | list:
        return self._eval_loader("test")
