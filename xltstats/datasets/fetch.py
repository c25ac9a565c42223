"""Download-or-mirror access to public files, pinned by URL and sha256.

Every external file xltstats reads is described by a :class:`RemoteFile`: the collection it
belongs to (``published``, ``ud``, ``udhr``), its path inside that collection, the pinned URL it
is downloaded from and its sha256.  :func:`fetch` returns a local path to a verified copy:

1. from a *mirror* when one is given (``mirror=`` or ``$XLTSTATS_MIRROR``; several directories
   may be joined with ``os.pathsep``).  For a mirror directory ``M`` the candidates are
   ``M/<path>``, ``M/<collection>/<path>`` and ``M/../<collection>/<path>``, so pointing the
   mirror at ``shared/data/published`` also finds ``shared/data/ud`` and ``shared/data/udhr``;
2. else from the download cache (``$XLTSTATS_CACHE`` or the XDG cache directory), where it was
   stored after a verified download;
3. else it is downloaded to a temporary file next to its cache place, verified, and moved into
   place atomically.  A failed download or a checksum mismatch raises :class:`DownloadError`
   and leaves nothing in the cache.

When a mirror is given, the network is never used: a file missing from the mirror is an error.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .._io import file_mode
from ..errors import DownloadError
from ..paths import cache_dir

_VERIFIED: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class RemoteFile:
    collection: str
    path: str
    url: str
    sha256: str | None = None

    def __post_init__(self):
        # A registry entry names a file inside a collection: it cannot reach outside the cache or
        # a mirror folder (no absolute path, no "..", no empty or odd parts).
        if not _safe_relative(self.collection) or "/" in self.collection:
            raise DownloadError(f"collection name {self.collection!r} is not a plain folder name")
        if not _safe_relative(self.path):
            raise DownloadError(f"file path {self.path!r} of collection {self.collection!r} must be a relative "
                                "path without '..', '.' or empty parts")

    @property
    def cache_path(self) -> Path:
        root = cache_dir().resolve()
        path = cache_dir() / self.collection / self.path
        # a symlink inside the cache must not lead outside it
        if not path.resolve().is_relative_to(root):
            raise DownloadError(f"{path} leads outside the cache {root} (a symbolic link?); remove it")
        return path


def _safe_relative(path: str) -> bool:
    if not isinstance(path, str) or not path or "\\" in path or "\0" in path:
        return False
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key in _VERIFIED:
        return _VERIFIED[key]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    digest = h.hexdigest()
    _VERIFIED[key] = digest
    return digest


def mirror_dirs(mirror: str | os.PathLike | None = None) -> list[Path]:
    """Mirror directories from the argument, else from ``$XLTSTATS_MIRROR``."""
    value = mirror if mirror is not None else os.environ.get("XLTSTATS_MIRROR", "")
    if not value:
        return []
    return [Path(p).expanduser() for p in str(value).split(os.pathsep) if p]


def _mirror_candidates(remote: RemoteFile, mirrors: list[Path]):
    for m in mirrors:
        yield m / remote.path
        yield m / remote.collection / remote.path
        yield m.parent / remote.collection / remote.path


def _check(path: Path, remote: RemoteFile, where: str) -> Path:
    if remote.sha256:
        got = sha256_of(path)
        if got != remote.sha256:
            raise DownloadError(
                f"checksum mismatch for {remote.collection}/{remote.path} in {where} ({path}): "
                f"expected sha256 {remote.sha256}, got {got}"
            )
    return path


def _check_cached(path: Path, remote: RemoteFile) -> Path:
    """A cached copy that fails its checksum is removed (the cache is xltstats' own), then refused."""
    try:
        return _check(path, remote, "the cache")
    except DownloadError as exc:
        path.unlink(missing_ok=True)
        raise DownloadError(f"{exc}; the damaged copy was removed from the cache, run again to download it "
                            "afresh") from None


def fetch(remote: RemoteFile, mirror: str | os.PathLike | None = None, *, quiet: bool = False) -> Path:
    """Local path of a verified copy of ``remote`` (see the module docstring)."""
    mirrors = mirror_dirs(mirror)
    if mirrors:
        for cand in _mirror_candidates(remote, mirrors):
            if cand.is_file():
                return _check(cand, remote, "the mirror")
        tried = ", ".join(str(c) for c in _mirror_candidates(remote, mirrors))
        raise DownloadError(
            f"{remote.collection}/{remote.path} is not in the mirror (looked at: {tried}); "
            "unset XLTSTATS_MIRROR / --mirror to download it from " + remote.url
        )
    target = remote.cache_path
    if target.is_file():
        return _check_cached(target, remote)
    return download(remote, quiet=quiet)


def download(remote: RemoteFile, *, quiet: bool = False, timeout: float = 60.0) -> Path:
    target = remote.cache_path
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_downloads(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".{os.getpid()}.part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        if not quiet:
            print(f"xltstats: downloading {remote.url}", file=sys.stderr)
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            req = urllib.request.Request(remote.url, headers={"User-Agent": "xltstats"})
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                for block in iter(lambda: resp.read(1 << 20), b""):
                    h.update(block)
                    out.write(block)
        got = h.hexdigest()
        if remote.sha256 and got != remote.sha256:
            raise DownloadError(
                f"checksum mismatch for {remote.url}: expected sha256 {remote.sha256}, got {got}; "
                "the file was not kept"
            )
        os.chmod(tmp, file_mode())  # mkstemp made it 0600: the cache follows the umask like any file
        os.replace(tmp, target)
        return target
    except DownloadError:
        raise
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DownloadError(
            f"could not download {remote.url}: {exc}. Offline? Point XLTSTATS_MIRROR (or --mirror) "
            "at a local copy of the data"
        ) from exc
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_stale_downloads(target: Path) -> list[Path]:
    """Remove partial downloads of ``target`` (``.NAME.XXXX.PID.part``) whose process is gone.

    A download killed with SIGKILL cannot clean up after itself; the next download of the same
    file does.  A partial file of a live download is left alone.
    """
    removed = []
    for part in sorted(Path(target).parent.glob(f".{target.name}.*.part")):
        pid_text = part.name[: -len(".part")].rsplit(".", 1)[-1]
        if pid_text.isdigit() and _alive(int(pid_text)):
            continue
        part.unlink(missing_ok=True)
        removed.append(part)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
