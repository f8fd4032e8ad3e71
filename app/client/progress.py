"""Progress bars (tqdm: bytes, rate, ETA) and the file slices that feed them while httpx reads.

tqdm rather than rich: one small pure-Python package with no dependencies of its own, and its
byte bar (`unit="B", unit_scale=True`) already shows size, rate and ETA. It draws on stderr,
only when stderr is a terminal, so `--json` output and scripts stay clean.
"""

import io
import os
import threading
from pathlib import Path
from types import TracebackType

from tqdm import tqdm


class Progress:
    """A byte counter shown as a bar; `advance` may be called from several threads."""

    def __init__(self, total: int, label: str) -> None:
        self._bar = tqdm(
            total=total,
            desc=label,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            dynamic_ncols=True,
            disable=None,  # drawn only on a terminal
        )
        self._lock = threading.Lock()

    def advance(self, count: int) -> None:
        with self._lock:
            self._bar.update(count)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._bar.close()


class FileSlice(io.RawIOBase):
    """Bytes `start` up to `start + length` of a file, read with `pread` (so slices of one file
    can be read by several threads at once), counted into a `Progress` as httpx reads them.

    No `fileno()`: httpx then finds the length by seeking, which a slice answers for itself.
    """

    def __init__(self, path: Path, start: int, length: int, progress: Progress) -> None:
        super().__init__()
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._start = start
        self._length = length
        self._position = 0
        self._progress = progress
        self.sent = 0  # bytes counted into the progress bar, undone if this slice is sent again

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._length}[whence]
        self._position = min(max(base + offset, 0), self._length)
        if self._position == 0 and self.sent:  # httpx rewinds before sending: count afresh
            self._progress.advance(-self.sent)
            self.sent = 0
        return self._position

    def read(self, size: int = -1) -> bytes:
        left = self._length - self._position
        size = left if size < 0 else min(size, left)
        data = os.pread(self._fd, size, self._start + self._position) if size > 0 else b""
        self._position += len(data)
        self.sent += len(data)
        self._progress.advance(len(data))
        return data

    def readinto(self, buffer: "bytearray | memoryview") -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        super().close()
