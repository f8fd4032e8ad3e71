"""The shipped deploy/nginx.conf, run for real in front of FileDock, carries SDK uploads through.

nginx comes from Debian (tests/debian.py installs it when it is missing; a failed install fails the
test, it never skips). The config is deploy/nginx.conf as shipped, with only the replicas'
addresses and the listen port replaced by loopback ones, inside a minimal `http` block.
"""

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from google import genai
from google.genai import types

from tests import loopback
from tests.debian import debian_program
from tests.servers import FileDockServer, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "nginx.conf"
MiB = 1024 * 1024
MAIN_CONF = """\
{user}
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {site};
}}
"""


def nginx_binary() -> str:
    return debian_program("nginx", "nginx")


def shipped_site(upstream: str, port: int) -> str:
    """deploy/nginx.conf with the replicas at `upstream` and listening on 127.0.0.1:`port`."""
    text = SHIPPED.read_text()
    text, replicas = re.subn(r"\bfiledock-\d+:8000\b", upstream, text)
    text, listens = re.subn(r"^(\s*)listen 80;", rf"\1listen 127.0.0.1:{port};", text, flags=re.MULTILINE)
    assert replicas >= 1 and listens == 1, "deploy/nginx.conf changed shape: update this test's substitutions"
    return text


@pytest.fixture(scope="module")
def filedock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileDockServer]:
    server = FileDockServer(tmp_path_factory.mktemp("behind-nginx") / "data").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(filedock: FileDockServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """nginx with the shipped config in front of `filedock`; yields its base URL."""
    binary = nginx_binary()
    prefix = tmp_path_factory.mktemp("nginx")
    port = free_port()
    site = prefix / "filedock.conf"
    site.write_text(shipped_site(f"127.0.0.1:{filedock.port}", port))
    user = "user root;" if os.geteuid() == 0 else ""  # workers stay root, as the temp dirs are root's
    conf = prefix / "nginx.conf"
    conf.write_text(MAIN_CONF.format(user=user, prefix=prefix, site=site))
    command = [binary, "-p", str(prefix), "-c", str(conf)]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(command)
    url = f"http://127.0.0.1:{port}"
    try:
        up = wait_until(lambda: _answers(f"{url}/healthz") or process.poll() is not None, 30)
        assert up and process.poll() is None, (prefix / "error.log").read_text()
        yield url
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful: workers finish, then the master exits
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(url: str) -> bool:
    try:
        return loopback.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "payload.bin"
    path.write_bytes(os.urandom(9 * MiB))  # two 8 MiB chunks for google-genai's resumable upload
    return path


def test_genai_resumable_upload_through_shipped_nginx(proxy: str, payload: Path) -> None:
    options = types.HttpOptions(base_url=proxy)
    with genai.Client(api_key="test-key", vertexai=False, http_options=options) as client:
        uploaded = client.files.upload(file=payload, config={"mime_type": "application/octet-stream"})
        assert uploaded.name is not None
        assert client.files.download(file=uploaded.name) == payload.read_bytes()


def test_openai_uploads_api_through_shipped_nginx(proxy: str, payload: Path) -> None:
    with openai.OpenAI(base_url=f"{proxy}/v1", api_key="test-key", max_retries=0) as client:
        upload = client.uploads.upload_file_chunked(
            file=payload, mime_type="application/octet-stream", purpose="user_data", part_size=4 * MiB
        )
        assert upload.status == "completed" and upload.file is not None
        assert client.files.content(upload.file.id).read() == payload.read_bytes()
