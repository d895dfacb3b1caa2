"""The snapshot on disk: public paths as files in the usual static-site layout, each replaced
atomically (temp file, fsync, rename) together with its precompressed ``.gz`` sibling.

A write that fails part-way (a full disk, a file-size limit, an I/O error) removes its temp files
and leaves the previous version of the page, and of its ``.gz``, exactly as it was.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

GZ = ".gz"
TEMP_PREFIX = ".tmp-"
# Served by the app from memory: enough for every summary page and a few hundred incident pages.
READ_CACHE_ENTRIES = 512
READ_CACHE_BYTES = 32 * 1024 * 1024


def file_for(path: str) -> str:
    """The file a public URL path lives in, as ``try_files $uri $uri/index.html`` finds it:
    ``/`` -> ``index.html``, ``/incidents/3`` -> ``incidents/3/index.html``, ``/feed.atom`` -> ``feed.atom``."""
    rel = path.lstrip("/")
    if not rel:
        return "index.html"
    last = rel.rstrip("/").rsplit("/", 1)[-1]
    if rel.endswith("/") or "." not in last:
        return rel.rstrip("/") + "/index.html"
    return rel


def gzip_bytes(body: bytes) -> bytes:
    # mtime=0: the same page always compresses to the same bytes (stable ETags, no rewrite).
    return gzip.compress(body, compresslevel=9, mtime=0)


def content_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:32]


@dataclass
class StoredFile:
    """One public response's bytes, ready to serve: body, gzip variant, strong validator, date."""

    body: bytes
    last_modified: float
    etag: str = ""
    _gzip: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.etag:
            self.etag = content_hash(self.body)

    @property
    def gzip(self) -> bytes:
        if self._gzip is None:
            self._gzip = gzip_bytes(self.body)
        return self._gzip


class SnapshotStore:
    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self._cache: OrderedDict[str, tuple[tuple[int, int, int], StoredFile]] = OrderedDict()
        self._cache_bytes = 0
        self._lock = threading.Lock()

    # --- writing (the publisher) ---------------------------------------------------------------

    def write(self, path: str, body: bytes) -> bool:
        """Publish ``body`` for a public path; False when the file already holds exactly it."""
        return self.write_file(file_for(path), body)

    def write_file(self, rel: str, body: bytes, *, compress: bool = True) -> bool:
        target = self._target(rel)
        try:
            if target.read_bytes() == body and (not compress or target.with_name(target.name + GZ).exists()):
                return False  # unchanged: keep its date and validators (caches answer 304)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            pass
        target.parent.mkdir(parents=True, exist_ok=True)
        files = [(target, body)]
        if compress:
            files.insert(0, (target.with_name(target.name + GZ), gzip_bytes(body)))
        _replace_together(files)
        return True

    def remove(self, path: str) -> bool:
        """Delete a public path's files (a deleted incident, a history page that no longer exists)."""
        target = self._target(file_for(path))
        removed = False
        for victim in (target, target.with_name(target.name + GZ)):
            with suppress(FileNotFoundError):
                victim.unlink()
                removed = True
        if removed and target.name == "index.html":
            with suppress(OSError):  # the member's directory, if nothing else is in it
                target.parent.rmdir()
        return removed

    def remove_tree(self, rel: str) -> None:
        shutil.rmtree(self._target(rel), ignore_errors=True)

    def sweep_temp_files(self, older_than: float = 3600) -> int:
        """Temp files a killed publisher left behind (never visible as pages: names start with a dot)."""
        cutoff = time.time() - older_than
        count = 0
        for temp in self.root.rglob(TEMP_PREFIX + "*"):
            with suppress(OSError):
                if temp.stat().st_mtime < cutoff:
                    temp.unlink()
                    count += 1
        return count

    def _target(self, rel: str) -> Path:
        target = (self.root / rel).resolve()
        root = self.root.resolve()
        if root not in target.parents:
            raise ValueError(f"{rel!r} is outside the snapshot directory")
        return target

    # --- reading (the app serving the snapshot) --------------------------------------------------

    def read(self, path: str) -> StoredFile | None:
        """The published file for a public path (None when there is none), cached in memory while
        the file is unchanged: one stat() per request."""
        rel = file_for(path)
        target = self.root / rel
        try:
            st = os.stat(target)
        except OSError:
            return None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            hit = self._cache.get(rel)
            if hit and hit[0] == key:
                self._cache.move_to_end(rel)
                return hit[1]
        try:
            body = target.read_bytes()
            gz_path = target.with_name(target.name + GZ)
            compressed = gz_path.read_bytes() if gz_path.exists() else None
        except OSError:
            return None
        stored = StoredFile(body, st.st_mtime, _gzip=compressed)
        with self._lock:
            old = self._cache.pop(rel, None)
            if old:
                self._cache_bytes -= len(old[1].body)
            self._cache[rel] = (key, stored)
            self._cache_bytes += len(body)
            while self._cache and (len(self._cache) > READ_CACHE_ENTRIES or self._cache_bytes > READ_CACHE_BYTES):
                _, (_, evicted) = self._cache.popitem(last=False)
                self._cache_bytes -= len(evicted.body)
        return stored


def _replace_together(files: list[tuple[Path, bytes]]) -> None:
    """Write every file to a temp file next to it, fsync, then rename them all into place. If any
    write fails nothing is renamed, so a reader sees the old set or the new set, never a part."""
    temps: list[tuple[str, Path]] = []
    stamp = time.time_ns()
    try:
        for dest, data in files:
            fd, temp = tempfile.mkstemp(dir=dest.parent, prefix=TEMP_PREFIX)
            temps.append((temp, dest))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp, 0o644)  # mkstemp makes 0600; nginx runs as another user
            os.utime(temp, ns=(stamp, stamp))  # the page and its .gz carry one Last-Modified
        for temp, dest in temps:
            os.replace(temp, dest)
    except BaseException:
        for temp, _ in temps:
            with suppress(FileNotFoundError):
                os.unlink(temp)
        raise
