"""The uvicorn internals `app.server` extends, pinned: a uvicorn release that renames or reshapes
one of them fails here, loudly, instead of silently dropping a limit or an answer.

`app/server/protocol.py` overrides parser callbacks and `send_400_response` of httptools'
protocol, and relies on uvicorn calling them (and `on_response_complete`) where it does today;
`app/server/passthrough.py` feeds `on_body` and `on_message_complete` itself and replaces the
parser as uvicorn made it;
`app/server/zerocopy.py` wraps `_start_asgi_task` and reads and writes attributes of the
request-response cycle; `app/server/shutdown.py` wraps it too, and overrides `shutdown`, which
uvicorn's server calls on each connection before it waits out the grace.
"""

import inspect
import re

import pytest
from uvicorn import Server
from uvicorn.protocols.http import httptools_impl
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from app.server.protocol import FileDockHttpProtocol, LimitedHttpToolsProtocol

# Each hook with the parameters FileDock's override takes (self first).
HOOKS = {
    "connection_made": ["self", "transport"],
    "connection_lost": ["self", "exc"],
    "data_received": ["self", "data"],
    "on_message_begin": ["self"],
    "on_url": ["self", "url"],
    "on_header": ["self", "name", "value"],
    "on_headers_complete": ["self"],
    "on_body": ["self", "body"],
    "on_message_complete": ["self"],
    "on_response_complete": ["self"],
    "send_400_response": ["self", "msg"],
    "_start_asgi_task": ["self", "cycle", "app"],
    "shutdown": ["self"],
}
# Attributes of RequestResponseCycle that app/server reads or writes.
CYCLE_ATTRIBUTES = [
    "scope",
    "flow",
    "body",
    "more_body",
    "keep_alive",
    "disconnected",
    "response_started",
    "response_complete",
    "chunked_encoding",
    "expected_content_length",
    "on_response",
    "transport",
]
# Attributes of the protocol that app/server reads.
PROTOCOL_ATTRIBUTES = ["transport", "loop", "cycle", "server_state", "pipeline", "flow"]


def source_of(function: object) -> str:
    return inspect.getsource(function)  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "parameters"), HOOKS.items())
def test_each_hook_exists_with_the_parameters_we_override(name: str, parameters: list[str]) -> None:
    hook = getattr(HttpToolsProtocol, name, None)
    assert callable(hook), f"uvicorn's HttpToolsProtocol has no {name}: app/server must be revisited"
    assert list(inspect.signature(hook).parameters) == parameters


def test_our_protocol_overrides_each_hook_on_uvicorns_class() -> None:
    assert issubclass(FileDockHttpProtocol, HttpToolsProtocol)
    overridden = {
        name
        for cls in FileDockHttpProtocol.__mro__[:-1]
        if cls is not HttpToolsProtocol
        for name in vars(cls)
    }
    assert set(HOOKS) - {"_start_asgi_task", "shutdown", "on_message_complete"} <= set(
        vars(LimitedHttpToolsProtocol)
    )
    assert set(HOOKS) <= overridden


def test_the_cycle_has_the_attributes_we_use() -> None:
    assigned = set(re.findall(r"self\.(\w+)(?::[^=\n]+)? = ", source_of(RequestResponseCycle.__init__)))
    missing = set(CYCLE_ATTRIBUTES) - assigned
    assert not missing, f"RequestResponseCycle no longer sets {sorted(missing)}"
    for method in ("send", "receive", "run_asgi"):
        assert inspect.iscoroutinefunction(getattr(RequestResponseCycle, method))


def test_the_protocol_sets_the_attributes_we_use() -> None:
    assigned = re.findall(r"self\.(\w+)(?::[^=\n]+)? = ", inspect.getsource(HttpToolsProtocol))
    missing = set(PROTOCOL_ATTRIBUTES) - set(assigned)
    assert not missing, f"HttpToolsProtocol no longer sets {sorted(missing)}"


def test_uvicorn_calls_the_hooks_where_we_rely_on_it() -> None:
    # A parser error (ours, raised in a callback, or httptools' own) ends in send_400_response.
    assert re.search(
        r"except httptools\.HttpParserError:.*?self\.send_400_response\(",
        source_of(HttpToolsProtocol.data_received),
        re.S,
    )
    # A request starts through _start_asgi_task, both at once and when dequeued after a pipeline.
    assert "self._start_asgi_task(" in source_of(HttpToolsProtocol.on_headers_complete)
    assert "self._start_asgi_task(" in source_of(HttpToolsProtocol.on_response_complete)
    # The cycle reports a complete response through on_response, bound to on_response_complete.
    assert "on_response=self.on_response_complete" in source_of(HttpToolsProtocol.on_headers_complete)
    assert re.search(
        r"self\.response_complete = True.*?self\.on_response\(\)", source_of(RequestResponseCycle.send), re.S
    )
    # A body chunk is appended to cycle.body with +=, and receive hands bytes(cycle.body) on
    # and starts a new one: so an empty bytes body passes chunks through uncopied.
    assert "self.cycle.body += body" in source_of(HttpToolsProtocol.on_body)
    assert '"body": bytes(self.body)' in source_of(RequestResponseCycle.receive)
    # A request's body is whole once on_message_complete clears more_body.
    assert "self.cycle.more_body = False" in source_of(HttpToolsProtocol.on_message_complete)
    # The connection's parser is `self.parser`, made as app/server/passthrough.py makes a new one,
    # and each read first cancels the keep-alive timer (which passthrough does too).
    init = source_of(HttpToolsProtocol.__init__)
    assert "self.parser = httptools.HttpRequestParser(self)" in init
    assert "set_dangerous_leniencies(lenient_data_after_close=True)" in init
    assert source_of(HttpToolsProtocol.data_received).count("self._unset_keepalive_if_required()") == 1


def test_uvicorn_shuts_connections_down_before_it_waits_out_the_grace() -> None:
    # Each connection hears `shutdown()` first (the grace timer starts there); uvicorn cancels
    # what still runs only after `timeout_graceful_shutdown`, our backstop.
    assert re.search(
        r"connection\.shutdown\(\).*?wait_for\(.*?timeout=self\.config\.timeout_graceful_shutdown.*?\.cancel\(",
        source_of(Server.shutdown),
        re.S,
    )
    # A cycle whose answer is under way gets `keep_alive = False`: its answer closes the connection.
    assert "self.cycle.keep_alive = False" in source_of(HttpToolsProtocol.shutdown)
    # Each request runs as a task of the server state's set, running its cycle's `run_asgi`:
    # app/server/shutdown.py finds the cycle as that coroutine's `self`.
    assert re.search(
        r"create_task\(cycle\.run_asgi\(app\).*?self\.tasks\.add\(task\)",
        source_of(HttpToolsProtocol._start_asgi_task),
        re.S,
    )
    assert list(inspect.signature(RequestResponseCycle.run_asgi).parameters) == ["self", "app"]


@pytest.mark.parametrize("status", [400, 408, 431])
def test_status_line_holds_the_statuses_we_refuse_with(status: int) -> None:
    assert STATUS_LINE[status].startswith(f"HTTP/1.1 {status} ".encode())
    assert STATUS_LINE[status].endswith(b"\r\n")
    assert httptools_impl.STATUS_LINE is STATUS_LINE
