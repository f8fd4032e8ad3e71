"""A TCP relay on loopback between FileDock and a service it uses (PostgreSQL, S3), for the tests
to act on the wire: turn it into a black hole (connections accepted, nothing ever answered), or
note what the requests sent."""

import contextlib
import re
import socket
import threading
import time


class Relay:
    """Forwards loopback connections to `target` until `black_hole` is set. With `watch`, every
    match of it in the bytes sent to `target` is added to `seen`."""

    def __init__(self, target: tuple[str, int], watch: re.Pattern[bytes] | None = None) -> None:
        self.target = target
        self.watch = watch
        self.seen: set[bytes] = set()
        self.black_hole = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                self.sockets.append(client)
                if self.black_hole:
                    continue  # accepted, never answered
                upstream = socket.create_connection(self.target)
                self.sockets.append(upstream)
                threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
                threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, requests: bool) -> None:
        tail = b""  # the end of the previous read, so a match split across two reads is still seen
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if requests and self.watch is not None:
                    self.seen.update(self.watch.findall(tail + data))
                    tail = data[-200:]
                while self.black_hole:  # a connection open before the outage goes silent too
                    time.sleep(0.05)
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)  # pass the end of the stream on, as a direct connection would

    def close(self) -> None:
        self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()
