"""Published cross-lingual transfer results: a registry, pinned downloads and loaders.

``load_dataset(name_or_path)`` returns a validated results table (see :mod:`xltstats.results`)
for a registered dataset (``list_datasets()``) or a user's own results file.  ``dataset_info``
gives its title, BibTeX citation, licence, origin and pinned commit; ``dataset_files`` its files
as :class:`~xltstats.datasets.fetch.RemoteFile` (pinned URL + sha256); ``get_dataset_file`` the
local, verified path of one file (e.g. an auxiliary table).
"""
from __future__ import annotations

from .fetch import DownloadError, RemoteFile, fetch
from .loaders import load_dataset
from .registry import dataset_files, dataset_info, get_dataset_file, list_datasets

__all__ = ["load_dataset", "list_datasets", "dataset_info", "dataset_files", "get_dataset_file",
           "RemoteFile", "fetch", "DownloadError"]
