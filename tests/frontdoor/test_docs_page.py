"""The API reference page, /docs, rendered by a real browser from a real server.

Swagger UI draws the operations only once its script ran under the page's content security
policy and fetched /openapi.json, so an operation path in the rendered DOM proves the page, its
assets, the policy and the spec together. The raw HTML names no operation.

Chromium comes from Debian (tests/debian.py installs it when it is missing); a failed install
fails the test, it never skips.
"""

import os
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from tests import loopback
from tests.debian import debian_program
from tests.deploy.test_nginx_proxy import MAIN_CONF, nginx_binary
from tests.servers import FileDockServer, free_port, wait_until

KEY = "sk-docs-5b2c"
RENDERED_OPERATION = re.compile(r'class="opblock-summary-path"[^>]*>.*?/v1/files/\{file_id\}/content', re.S)


def chromium_binary() -> str:
    return debian_program("chromium", "chromium")


def rendered_dom(url: str, profile: Path) -> str:
    """The DOM of `url` once its scripts settled, as headless Chromium sees it."""
    command = [chromium_binary(), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run"]
    command += [f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--dump-dom", url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_docs_page_renders_the_operations_with_keys_configured(
    make_server: Callable[..., FileDockServer], tmp_path: Path
) -> None:
    server = make_server(api_keys=f"{KEY}=docs")
    assert RENDERED_OPERATION.search(loopback.get(f"{server.url}/docs").text) is None
    dom = rendered_dom(f"{server.url}/docs", tmp_path / "profile")
    assert RENDERED_OPERATION.search(dom), dom[-2000:]
    assert "Failed to load API definition" not in dom


def test_docs_page_renders_behind_a_proxy_that_adds_a_path_prefix(
    make_server: Callable[..., FileDockServer], tmp_path: Path
) -> None:
    server = make_server()
    port = free_port()
    site = tmp_path / "prefix.conf"
    site.write_text(
        f"server {{ listen 127.0.0.1:{port}; "
        f"location /filedock/ {{ proxy_pass http://127.0.0.1:{server.port}/; }} }}\n"
    )
    conf = tmp_path / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(MAIN_CONF.format(user=user, prefix=tmp_path, site=site))
    nginx = subprocess.Popen([nginx_binary(), "-p", str(tmp_path), "-c", str(conf)])
    try:
        assert wait_until(lambda: _answers(f"http://127.0.0.1:{port}/filedock/healthz"), 30)
        dom = rendered_dom(f"http://127.0.0.1:{port}/filedock/docs", tmp_path / "profile")
        assert RENDERED_OPERATION.search(dom), dom[-2000:]
    finally:
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(timeout=15)


def _answers(url: str) -> bool:
    try:
        return loopback.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_docs_page_policy_allows_only_this_origin(make_server: Callable[..., FileDockServer]) -> None:
    server = make_server(api_keys=f"{KEY}=docs")
    page = loopback.get(f"{server.url}/docs")
    assert len(page.headers.get_list("content-security-policy")) == 1
    policy = dict(d.strip().split(" ", 1) for d in page.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == policy["style-src"] == policy["connect-src"] == "'self'"
    assert policy["img-src"] == "'self' data:"
    # Every URL in the page is relative, so a proxy's path prefix is kept.
    assert re.findall(r'(?:src|href)="([^"]*)"', page.text) == [
        "docs/assets/favicon.png",
        "docs/assets/swagger-ui.css",
        "docs/assets/swagger-ui-bundle.js",
        "docs/start.js",
    ]
    assert "<script>" not in page.text  # no inline script: the policy allows none


def test_docs_assets_and_spec_need_no_key(make_server: Callable[..., FileDockServer]) -> None:
    server = make_server(api_keys=f"{KEY}=docs")
    for path, kind in (
        ("/docs/assets/swagger-ui-bundle.js", "text/javascript"),
        ("/docs/assets/swagger-ui.css", "text/css"),
        ("/docs/start.js", "text/javascript"),
        ("/openapi.json", "application/json"),
    ):
        answer = loopback.get(f"{server.url}{path}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(kind), path
    assert "/v1/files" in loopback.get(f"{server.url}/openapi.json").json()["paths"]
    assert loopback.get(f"{server.openai_url}/files").status_code == 401  # the API itself still needs one


def test_spec_names_each_operation_once(make_server: Callable[..., FileDockServer]) -> None:
    """Client generators key operations by operationId; a repeated one breaks them."""
    spec = loopback.get(f"{make_server().url}/openapi.json").json()
    operations = [
        (op["operationId"], method, path)
        for path, methods in spec["paths"].items()
        for method, op in methods.items()
        if isinstance(op, dict) and "operationId" in op
    ]
    ids = [operation_id for operation_id, _, _ in operations]
    assert len(ids) == len(set(ids)), sorted(o for o in operations if ids.count(o[0]) > 1)
    assert {"get", "head"} <= set(spec["paths"]["/v1/files/{file_id}/content"])


def test_responses_other_than_the_docs_page_keep_the_strict_policy(
    make_server: Callable[..., FileDockServer],
) -> None:
    server = make_server()
    for path in ("/openapi.json", "/docs/assets/swagger-ui-bundle.js", "/v1/files", "/docs/assets/missing"):
        policy = loopback.get(f"{server.url}{path}").headers["content-security-policy"]
        assert policy == "default-src 'none'; frame-ancestors 'none'; sandbox", path
