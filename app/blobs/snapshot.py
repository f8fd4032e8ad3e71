"""Local blob trees for `filedock backup` and `restore`: list the committed blobs of a root and put
one into another root, hard-linked where the filesystem allows (blobs are never changed in
place, only replaced by rename or removed, so a link is as good as a copy), else copied.
"""

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from app.blobs.base import BlobStoreError
from app.blobs.local import blob_path, fsync_path

_CANNOT_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES}


def committed_keys(root: Path) -> Iterator[str]:
    """Keys of the committed blobs under `root`, one shard directory at a time."""
    with contextlib.suppress(FileNotFoundError), os.scandir(root) as shards:
        for shard in shards:
            if shard.name == "tmp" or not shard.is_dir():
                continue
            with os.scandir(shard.path) as entries:
                yield from [e.name for e in entries if e.is_file()]


class BlobTreeCopier:
    """Puts blobs of `source` into `destination` under the same layout; links unless `copy`."""

    def __init__(self, source: Path, destination: Path, *, copy: bool = False) -> None:
        self.source = source
        self.destination = destination
        self.link = not copy
        self.linked = 0
        self.copied = 0

    def put(self, key: str) -> bool:
        """Whether the blob is in the destination now (False: the source has no such blob)."""
        target = blob_path(self.destination, key)
        if target.exists():
            return True
        target.parent.mkdir(parents=True, exist_ok=True)
        source = blob_path(self.source, key)
        try:
            if self.link:
                try:
                    os.link(source, target)
                    self.linked += 1
                    return True
                except OSError as exc:
                    if exc.errno not in _CANNOT_LINK:
                        raise
                    self.link = False  # another filesystem: copy from now on
            shutil.copyfile(source, target)
            fsync_path(target)
            self.copied += 1
            return True
        except FileNotFoundError:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()  # a copy begun before the source vanished
            return False
        except OSError as exc:
            raise BlobStoreError(f"could not put blob {key} into {target.parent}: {exc}") from exc
