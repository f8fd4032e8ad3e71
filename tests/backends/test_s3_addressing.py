"""An S3 endpoint on an IP address or `localhost` works without FILEDOCK_S3_FORCE_PATH_STYLE, and
a blob store that refuses at start-up is one line naming the settings to look at.

SeaweedFS (tests/scaleout.py) on 127.0.0.1 stands in for MinIO or any S3-compatible server there:
`<bucket>.127.0.0.1` is no host name, so only path-style addressing can reach it.
"""

import subprocess
from pathlib import Path

import httpx
import pytest

from tests import scaleout
from tests.servers import FILEDOCK_BIN, S3Server, free_port


def s3_settings(seaweed: scaleout.SeaweedS3, endpoint: str, prefix: str) -> dict[str, str]:
    """An s3:// blob store on `endpoint` with no FILEDOCK_S3_FORCE_PATH_STYLE; SQLite metadata."""
    return {"blob_url": f"s3://{seaweed.bucket}/{prefix}", "s3_endpoint_url": endpoint}


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_s3_on_an_ip_or_localhost_serves_without_force_path_style(
    seaweed: scaleout.SeaweedS3, tmp_path: Path, host: str
) -> None:
    prefix = f"addressing-{host}"
    server = S3Server(
        tmp_path / "data", settings=s3_settings(seaweed, f"http://{host}:{seaweed.port}", prefix)
    )
    assert "FILEDOCK_S3_FORCE_PATH_STYLE" not in server.environment()
    server.start()
    try:
        with httpx.Client(base_url=server.openai_url, timeout=30) as http:
            created = http.post(
                "/files", data={"purpose": "user_data"}, files={"file": ("a.txt", b"path style")}
            ).raise_for_status()
            content = http.get(f"/files/{created.json()['id']}/content").raise_for_status().content
    finally:
        server.stop()
    assert content == b"path style"
    assert [key for key in seaweed.keys(prefix + "/") if "/_health/" not in key]  # in the bucket, by path


def test_s3_refusing_at_start_is_one_line_naming_the_settings(
    seaweed: scaleout.SeaweedS3, tmp_path: Path
) -> None:
    # Virtual-hosted style forced on an IP endpoint: the requests cannot name the bucket.
    settings = s3_settings(seaweed, seaweed.endpoint, "refused")
    server = S3Server(tmp_path / "data", settings={**settings, "s3_force_path_style": "false"})
    command = [FILEDOCK_BIN, "serve", "--port", str(free_port()), "--data-dir", str(server.data_dir)]
    result = subprocess.run(
        command,
        env=server.environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=90,
    )
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stdout
    for setting in ("FILEDOCK_S3_ENDPOINT_URL", "FILEDOCK_S3_FORCE_PATH_STYLE", "AWS_ACCESS_KEY_ID"):
        assert setting in lines[0]
