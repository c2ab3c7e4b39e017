"""Data: the research CSV schema, group codings, pair sampling, transforms.

See :mod:`detectors.data._tables` for the file format and
:mod:`detectors.data._datasets` for the ``[reals; fakes]`` batch layout.
"""

from ._datasets import ImageListDataset, PairDataset, collate_images, collate_pairs
from ._groups import GROUP_CODINGS, check_dataset, group_names, num_groups
from ._images import AUGMENTATIONS, build_transform, normalize_images, open_rgb
from ._tables import (
    TRAINING_FILES,
    ImageTable,
    check_data_root,
    group_counts,
    read_table,
    read_training_tables,
)

__all__ = [
    "AUGMENTATIONS",
    "GROUP_CODINGS",
    "TRAINING_FILES",
    "ImageListDataset",
    "ImageTable",
    "PairDataset",
    "build_transform",
    "check_data_root",
    "check_dataset",
    "collate_images",
    "collate_pairs",
    "group_counts",
    "group_names",
    "normalize_images",
    "num_groups",
    "open_rgb",
    "read_table",
    "read_training_tables",
]
