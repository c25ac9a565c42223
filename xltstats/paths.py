"""Where xltstats finds its own data files and its download cache."""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path


def package_data(*parts: str) -> Path:
    """Path of a file shipped inside the package (``xltstats/data/...``)."""
    return Path(str(resources.files("xltstats").joinpath("data", *parts)))


def cache_dir() -> Path:
    """The download cache: ``$XLTSTATS_CACHE`` or the XDG cache directory."""
    env = os.environ.get("XLTSTATS_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("xltstats"))
