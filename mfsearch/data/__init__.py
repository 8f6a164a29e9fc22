"""Dataset layer for the short-proxy NAS trainer.

Proxy trainings run for a few epochs on a few CPU cores, so the input pipeline
must never be the bottleneck: every image is decoded once and kept in memory as a
uint8 tensor (N x 3 x H x W), and batches are built by vectorised tensor ops on the
whole batch (gather, crop, flip, resize, normalise) instead of per-image PIL
transforms. Modules, lowest first: `core` (DataError, InMemoryData, stratified
index sampling), `synthetic` and `shapes` (built in), `folders` (image trees and their decode cache),
`cifar`, `datasets` (`load_dataset`), `loader` (BatchLoader, make_loaders) and
`measure` (the `mfsearch data` measurements). Layouts, protocols and
numbers: docs/data.md.
"""
from .core import DataError, InMemoryData, channel_mean_std, stratified_split, stratified_subset
from .datasets import BUILT_IN_AGREEMENT, DATASETS, DEFAULT_CACHE_DIR, DEFAULT_DATA_ROOT, DEFAULT_DATASET, load_dataset
from .folders import DEFAULT_FOLDER_SIZE, DEFAULT_TEST_SPLIT, IMAGE_EXTENSIONS
from .loader import BatchLoader, make_loaders
from .shapes import make_shapes
from .synthetic import make_synthetic

__all__ = ["BUILT_IN_AGREEMENT", "DATASETS", "DEFAULT_DATASET", "DEFAULT_CACHE_DIR", "DEFAULT_DATA_ROOT",
           "DEFAULT_FOLDER_SIZE", "DEFAULT_TEST_SPLIT", "IMAGE_EXTENSIONS", "BatchLoader", "DataError", "InMemoryData",
           "channel_mean_std", "load_dataset", "make_loaders", "make_shapes", "make_synthetic", "stratified_split",
           "stratified_subset"]
