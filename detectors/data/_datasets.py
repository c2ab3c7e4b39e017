"""Datasets: fake/real pairs for training and validation, and a plain image list for inference.

Pair layout (spec sections 3.2 and 11): one item = one fake row plus one real
row; the collate function stacks the reals first and the fakes second, so a
batch of ``n`` items is ``[real_1..real_n; fake_1..fake_n]`` (``2n`` images).
One epoch is one pass over the fakes.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from .._errors import DataError
from ._images import open_rgb
from ._tables import ImageTable

__all__ = ["PairDataset", "ImageListDataset", "collate_pairs", "collate_images"]

_VALIDATION_STREAM = 2**31 - 1  # epoch number reserved for the fixed validation pairing


class _TableImages:
    """Load row ``i`` of a table as a sample dict (or ``None`` when skipping bad images)."""

    def __init__(self, table: ImageTable, transform: Callable, skip_bad: bool) -> None:
        self.table, self.transform, self.skip_bad = table, transform, skip_bad

    def sample(self, i: int) -> dict[str, Any] | None:
        t = self.table
        try:
            image = self.transform(open_rgb(t.paths[i], t.describe_row(i)))
        except DataError:
            if self.skip_bad:
                return None
            raise
        return {
            "image": image,
            "label": int(t.labels[i]),
            "label_specific": int(t.specific[i]),
            "group": int(t.groups[i]),
            "index": i,
        }


class PairDataset(Dataset):
    """One fake plus a seeded random real partner per item.

    The partner of fake ``i`` in epoch ``e`` is drawn uniformly with replacement
    from the reals by ``numpy.random.default_rng([seed, e])``, so it depends on
    the seed and the epoch only (not on workers, ranks or resumption).

    Parameters
    ----------
    fakes, reals : ImageTable
    transform : callable
        PIL image -> tensor.
    seed : int
    fixed : bool
        Use one pairing for every epoch (validation: reproducible metrics).
    skip_bad : bool
        Drop a pair whose image cannot be read (counted in the batch's ``n_skipped``)
        instead of raising :class:`DataError`.

    Examples
    --------
    >>> import tempfile
    >>> from detectors.synth import generate
    >>> root = tempfile.mkdtemp()
    >>> _ = generate(root, 40, size=32)
    >>> from detectors.data import build_transform, read_training_tables
    >>> fakes, reals = read_training_tables(root, "train", dataset="ff++", skip_missing=False)
    >>> pairs = PairDataset(fakes, reals, build_transform(32), seed=0)
    >>> item = pairs[0]
    >>> item["real"]["label"], item["fake"]["label"], item["fake"]["image"].shape
    (0, 1, torch.Size([3, 32, 32]))
    """

    def __init__(
        self,
        fakes: ImageTable,
        reals: ImageTable,
        transform: Callable,
        *,
        seed: int,
        fixed: bool = False,
        skip_bad: bool = False,
    ) -> None:
        self.fakes = _TableImages(fakes, transform, skip_bad)
        self.reals = _TableImages(reals, transform, skip_bad)
        self.seed, self.fixed = int(seed), fixed
        self.partners = np.zeros(len(fakes), dtype=np.int64)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw the real partners of ``epoch`` (no-op for a fixed pairing after the first call)."""
        stream = _VALIDATION_STREAM if self.fixed else int(epoch)
        rng = np.random.default_rng([self.seed, stream])
        self.partners = rng.integers(0, len(self.reals.table), size=len(self.fakes.table))

    def __len__(self) -> int:
        return len(self.fakes.table)

    def __getitem__(self, i: int) -> dict[str, Any]:
        fake = self.fakes.sample(i)
        real = self.reals.sample(int(self.partners[i]))
        return {"real": real, "fake": fake}


def _stack(samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    return {
        "image": torch.stack([s["image"] for s in samples]),
        "label": torch.tensor([s["label"] for s in samples], dtype=torch.long),
        "label_specific": torch.tensor([s["label_specific"] for s in samples], dtype=torch.long),
        "group": torch.tensor([s["group"] for s in samples], dtype=torch.long),
    }


def collate_pairs(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch pair items as ``[reals; fakes]``; pairs with an unreadable image are dropped.

    Returns
    -------
    dict
        ``image`` (2n, 3, S, S), ``label`` (2n,), ``label_specific`` (2n,), ``group`` (2n,)
        and ``n_skipped`` (int: images that could not be read). Empty when every pair was dropped.

    Examples
    --------
    >>> import tempfile
    >>> from detectors.synth import generate
    >>> root = tempfile.mkdtemp()
    >>> _ = generate(root, 40, size=32)
    >>> from detectors.data import build_transform, read_training_tables
    >>> tables = read_training_tables(root, "train", dataset="ff++", skip_missing=False)
    >>> pairs = PairDataset(*tables, build_transform(32), seed=0)
    >>> batch = collate_pairs([pairs[0], pairs[1]])
    >>> batch["label"].tolist(), batch["image"].shape, batch["n_skipped"]
    ([0, 0, 1, 1], torch.Size([4, 3, 32, 32]), 0)
    """
    good = [it for it in items if it["real"] is not None and it["fake"] is not None]
    n_skipped = sum((it["real"] is None) + (it["fake"] is None) for it in items)
    if not good:
        return {"n_skipped": n_skipped}
    reals = _stack([it["real"] for it in good])
    fakes = _stack([it["fake"] for it in good])
    batch: dict[str, Any] = {k: torch.cat([reals[k], fakes[k]]) for k in reals}
    batch["n_skipped"] = n_skipped
    return batch


class ImageListDataset(Dataset):
    """Every row of one table in file order (inference).

    Examples
    --------
    >>> import tempfile
    >>> from detectors.synth import generate
    >>> root = tempfile.mkdtemp()
    >>> _ = generate(root, 40, size=32)
    >>> from detectors.data import build_transform, read_table
    >>> images = ImageListDataset(read_table(f"{root}/test.csv"), build_transform(32))
    >>> len(images), images[0]["image"].dtype
    (8, torch.uint8)
    """

    def __init__(self, table: ImageTable, transform: Callable, *, skip_bad: bool = False) -> None:
        self.images = _TableImages(table, transform, skip_bad)

    def __len__(self) -> int:
        return len(self.images.table)

    def __getitem__(self, i: int) -> dict[str, Any] | tuple[None, int]:
        sample = self.images.sample(i)
        return sample if sample is not None else (None, i)


def collate_images(items: list[Any]) -> dict[str, Any]:
    """Batch inference items; ``index`` says which table rows the batch holds, ``skipped`` which
    failed.

    Examples
    --------
    >>> import tempfile
    >>> from detectors.synth import generate
    >>> root = tempfile.mkdtemp()
    >>> _ = generate(root, 40, size=32)
    >>> from detectors.data import build_transform, read_table
    >>> images = ImageListDataset(read_table(f"{root}/test.csv"), build_transform(32))
    >>> batch = collate_images([images[0], images[1]])
    >>> batch["index"].tolist(), batch["image"].shape
    ([0, 1], torch.Size([2, 3, 32, 32]))
    """
    good = [it for it in items if isinstance(it, dict)]
    skipped = [it[1] for it in items if not isinstance(it, dict)]
    batch: dict[str, Any] = _stack(good) if good else {}
    batch["index"] = torch.tensor([s["index"] for s in good], dtype=torch.long)
    batch["skipped"] = skipped
    return batch
