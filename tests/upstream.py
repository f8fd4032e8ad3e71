"""A small OpenAI-compatible upstream for the batch tests, run as its own process on loopback.

`python -m tests.upstream --port N [--latency-ms M]` serves `POST /v1/chat/completions` and
`POST /v1/embeddings` with deterministic answers. The request's `model` picks the behaviour:

    echo (or any other)   200, the last message's content echoed, with usage
    fail-429-once         429 with `retry-after-ms: 50` the first time a prompt is seen, then 200
    fail-429-retry-after  429 with `retry-after: 1` the first time, then 200
    fail-500-once         500 the first time, then 200
    fail-500-always       500, always
    drop-once             the connection closed without an answer the first time, then 200
    fail-400              400 with an OpenAI error body, always

`GET /stats` reports what it saw: requests in all, the most in flight at once, how often each
prompt came and when. A plain asyncio server (not uvicorn), so it can drop a connection.
Standard library only: it runs beside any SDK environment.
"""

import argparse
import asyncio
import json
import time
from collections import defaultdict
from typing import Any


class Upstream:
    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.times: dict[str, list[float]] = defaultdict(list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while request := await _read_request(reader):
                method, path, body = request
                if not await self._answer(method, path, body, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _answer(self, method: str, path: str, body: bytes, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False once the connection is to be closed."""
        if method == "GET" and path == "/stats":
            _respond(writer, 200, self.stats())
            return True
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.latency)
            payload = json.loads(body)
            key = _prompt(payload)
            self.times[key].append(time.time())
            first = len(self.times[key]) == 1
            status, headers, answer = self._reply(path, payload, key, first)
            if status == 0:
                writer.transport.abort()  # drop the connection: no answer at all
                return False
            _respond(writer, status, answer, headers)
            await writer.drain()
            return True
        finally:
            self.in_flight -= 1

    def _reply(
        self, path: str, payload: dict[str, Any], key: str, first: bool
    ) -> tuple[int, dict[str, str], Any]:
        model = str(payload.get("model", ""))
        if model == "fail-400":
            error = {
                "message": f"Invalid request for {key}.",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
            return 400, {}, {"error": error}
        if first and model == "fail-429-once":
            return 429, {"retry-after-ms": "50"}, {"error": {"message": "Rate limited.", "type": "requests"}}
        if first and model == "fail-429-retry-after":
            return 429, {"retry-after": "1"}, {"error": {"message": "Rate limited.", "type": "requests"}}
        if (first and model == "fail-500-once") or model == "fail-500-always":
            return 500, {}, {"error": {"message": "Upstream broke.", "type": "server_error"}}
        if first and model == "drop-once":
            return 0, {}, None
        if path.endswith("/embeddings"):
            return 200, {"x-request-id": f"req-emb-{key}"}, _embedding(payload, key)
        return 200, {"x-request-id": f"req-chat-{key}"}, _completion(payload, key)

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "max_in_flight": self.max_in_flight,
            "counts": {key: len(times) for key, times in self.times.items()},
            "times": self.times,
        }


def _prompt(payload: dict[str, Any]) -> str:
    messages = payload.get("messages")
    if isinstance(messages, list) and messages:
        return str(messages[-1].get("content"))
    return json.dumps(payload.get("input"))


def _completion(payload: dict[str, Any], key: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{key}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": payload.get("model"),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": f"echo: {key}"}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 2},
            "completion_tokens_details": {"reasoning_tokens": 1},
        },
    }


def _embedding(payload: dict[str, Any], key: str) -> dict[str, Any]:
    inputs = payload.get("input")
    count = len(inputs) if isinstance(inputs, list) else 1
    data = [{"object": "embedding", "index": i, "embedding": [0.5, float(i)]} for i in range(count)]
    usage = {"prompt_tokens": 3 * count, "total_tokens": 3 * count}
    return {"object": "list", "data": data, "model": payload.get("model"), "usage": usage}


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes] | None:
    head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
    if not head:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return method, path, await reader.readexactly(length)


def _respond(
    writer: asyncio.StreamWriter, status: int, body: Any, headers: dict[str, str] | None = None
) -> None:
    raw = json.dumps(body).encode()
    head = [f"HTTP/1.1 {status} X", "content-type: application/json", f"content-length: {len(raw)}"]
    head += [f"{name}: {value}" for name, value in (headers or {}).items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + raw)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0)
    args = parser.parse_args()
    upstream = Upstream(args.latency_ms / 1000)
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", args.port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
