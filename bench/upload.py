"""Upload: one 256 MiB multipart upload with the openai SDK and with raw streaming httpx, against
`dd … conv=fsync` writing the same bytes to the same disk (FileDock fsyncs each blob once, too).

Each client runs in its own process (`python -m bench.upload <client> <url> <path> [repeat]`),
prints the seconds its request took and the new file's id, and reads the source from disk.
"""

import json
import secrets
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.common import MB, MiB, Row, RssSampler, filedock, rss_row, run_parallel

RUNS = 3
UPLOAD_TIMEOUT_SECONDS = 1800.0


def _multipart(path: Path, boundary: str, repeat: int) -> tuple[Iterator[bytes], int]:
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="bench.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def chunks() -> Iterator[bytes]:
        yield head
        for _ in range(repeat):
            with path.open("rb") as source:
                while chunk := source.read(MiB):
                    yield chunk
        yield tail

    return chunks(), len(head) + path.stat().st_size * repeat + len(tail)


def upload_httpx(url: str, path: Path, repeat: int = 1) -> str:
    """POST the file `repeat` times over as one streamed multipart body; the new file's id."""
    boundary = secrets.token_hex(16)
    body, length = _multipart(path, boundary, repeat)
    headers = {"content-type": f"multipart/form-data; boundary={boundary}", "content-length": str(length)}
    response = httpx.post(f"{url}/v1/files", content=body, headers=headers, timeout=UPLOAD_TIMEOUT_SECONDS)
    response.raise_for_status()
    return str(response.json()["id"])


def openai_client(url: str) -> Any:
    """An SDK client that has already made one small upload: the SDK imports its resources and
    builds its pydantic models lazily, on the first call (~0.5-1 s here), which is not transfer."""
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key="bench", max_retries=0, timeout=UPLOAD_TIMEOUT_SECONDS)
    warm_up = client.files.create(file=("warm-up.bin", b"x"), purpose="user_data").id
    client.files.delete(warm_up)
    return client


def upload_openai(client: Any, path: Path) -> str:
    with path.open("rb") as source:
        return str(client.files.create(file=("bench.bin", source), purpose="user_data").id)


def client_command(client: str, url: str, path: Path, repeat: int = 1) -> list[str]:
    return [sys.executable, "-m", "bench.upload", client, url, str(path), str(repeat)]


def timed_upload(client: str, url: str, path: Path, repeat: int = 1) -> tuple[float, str]:
    """Seconds the request took in a separate client process, and the id it created."""
    _, [output] = run_parallel([client_command(client, url, path, repeat)])
    result = json.loads(output)
    return float(result["seconds"]), str(result["id"])


def dd_command(source: Path, target: Path) -> list[str]:
    """The reference: `source` copied to `target` in 1 MiB blocks, fsync'd once at the end."""
    return ["dd", f"if={source}", f"of={target}", "bs=1M", "conv=fsync", "status=none"]


def _dd_seconds(source: Path, target: Path) -> float:
    seconds, _ = run_parallel([dd_command(source, target)])
    target.unlink()
    return seconds


def run(source: Path) -> list[Row]:
    size = source.stat().st_size
    times: dict[str, list[float]] = {"openai": [], "httpx": [], "dd": []}
    with filedock("upload") as server, RssSampler(server.pid) as sampler:
        for _ in range(RUNS):
            for client in ("openai", "httpx"):
                seconds, file_id = timed_upload(client, server.url, source)
                times[client].append(seconds)
                httpx.delete(f"{server.url}/v1/files/{file_id}").raise_for_status()
            times["dd"].append(_dd_seconds(source, server.data_dir / "dd.bin"))
    rate = {name: size / MB / statistics.median(values) for name, values in times.items()}
    return [
        Row("upload 256 MiB, openai SDK", rate["openai"], "MB/s", reference=rate["dd"], min_ratio=0.75),
        Row("upload 256 MiB, raw httpx", rate["httpx"], "MB/s", reference=rate["dd"], min_ratio=0.85),
        rss_row("upload phase", sampler),
    ]


def main(argv: list[str]) -> None:
    client, url, path, repeat = argv[0], argv[1], Path(argv[2]), int(argv[3]) if len(argv) > 3 else 1
    sdk = openai_client(url) if client == "openai" else None
    start = time.perf_counter()
    file_id = upload_openai(sdk, path) if client == "openai" else upload_httpx(url, path, repeat)
    print(json.dumps({"seconds": time.perf_counter() - start, "id": file_id}))


if __name__ == "__main__":
    main(sys.argv[1:])
