"""The supervisor of `filedock serve` with more than one worker: a small process that binds the
listening socket, starts the worker processes, which inherit it, starts a new worker when one
dies, and on SIGTERM or SIGINT passes SIGTERM on to every worker (each then finishes its requests
within the shutdown grace) and waits for them. SIGHUP replaces the workers one by one.

Why not uvicorn's supervisor (`uvicorn.supervisors.Multiprocess`): measured, it cost the tree
about 50 MiB of the 150 MiB the whole server may use. It ran in the process that had parsed the
settings (click, pydantic-settings: 38 MiB), and it starts workers with `multiprocessing`, which
adds a resource-tracker process (13 MiB) and has each worker import the CLI again. `filedock
serve` parses the settings, checks the stores, then replaces itself (`os.execv`, so the process
id the operator signals stays the same) with `python -m app.server.supervisor`, which imports the
standard library and `app.logs` only (12 MiB). uvicorn's other supervisor features are left out:
a worker whose every thread hangs is not killed (it answered a ping from a thread of its own),
and SIGTTIN/SIGTTOU do not change the number of workers.

Run as `python -m app.server.supervisor CONFIG`, CONFIG being `SupervisorConfig` as JSON; each
worker is `worker_command` plus `--fd N`, N the listening socket's descriptor.
"""

import json
import logging
import logging.config
import os
import select
import signal
import socket
import subprocess
import sys
from typing import NamedTuple

from app.logs import LogFormat, logging_config

# uvicorn's exit status for a worker that failed before serving (its lifespan, or its socket):
# a new worker would fail the same way, so the supervisor stops instead of restarting it.
STARTUP_FAILURE = 3
BACKLOG = 2048  # uvicorn's default
log = logging.getLogger("filedock.server")


class SupervisorConfig(NamedTuple):  # not a dataclass: `dataclasses` imports `inspect`, 1 MiB
    host: str
    port: int
    workers: int
    worker_command: list[str]
    log_level: str
    log_format: LogFormat
    metrics_dir: str | None = None  # prometheus-client's multiprocess directory, if any

    def to_json(self) -> str:
        return json.dumps(self._asdict())

    @classmethod
    def from_json(cls, text: str) -> "SupervisorConfig":
        return cls(**json.loads(text))


def exec_supervisor(config: SupervisorConfig) -> None:
    """Replace this process with the supervisor: what this process imported is given back, and its
    process id, which the operator signals, stays the supervisor's."""
    sys.stdout.flush()
    sys.stderr.flush()
    command = [sys.executable, "-m", "app.server.supervisor", config.to_json()]
    os.execv(sys.executable, command)  # noqa: S606 (our own interpreter, no shell)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket the workers share, bound as uvicorn binds it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


class Supervisor:
    def __init__(self, config: SupervisorConfig, sock: socket.socket) -> None:
        self.config = config
        self.sock = sock
        self.workers: list[subprocess.Popen[bytes]] = []
        self._signals: list[int] = []
        self._wakeup_read, wakeup_write = os.pipe()
        os.set_blocking(self._wakeup_read, False)
        os.set_blocking(wakeup_write, False)
        signal.set_wakeup_fd(wakeup_write)  # a signal ends the wait in `_sleep` at once
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(signum, self._note)

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; the exit status."""
        log.info("supervisor [%d] starting %d workers", os.getpid(), self.config.workers)
        self.workers = [self._start() for _ in range(self.config.workers)]
        status = 0
        while status == 0:
            self._sleep(1.0)
            received, self._signals = self._signals, []
            if signal.SIGTERM in received or signal.SIGINT in received:
                break
            if signal.SIGHUP in received:
                self._replace_all()
            status = self._replace_dead()
        self._stop_all()
        log.info("supervisor [%d] stopped", os.getpid())
        return status

    def _note(self, signum: int, _frame: object) -> None:
        self._signals.append(signum)

    def _sleep(self, seconds: float) -> None:
        select.select([self._wakeup_read], [], [], seconds)
        while True:
            try:
                if not os.read(self._wakeup_read, 512):
                    return
            except BlockingIOError:
                return

    def _start(self) -> subprocess.Popen[bytes]:
        fd = self.sock.fileno()
        return subprocess.Popen([*self.config.worker_command, "--fd", str(fd)], pass_fds=(fd,))

    def _replace_dead(self) -> int:
        """Start a worker in place of each that exited; STARTUP_FAILURE if one never started."""
        for index, worker in enumerate(self.workers):
            status = worker.poll()
            if status is None:
                continue
            self._forget(worker.pid)
            if status == STARTUP_FAILURE:
                log.error("worker [%d] failed to start; stopping", worker.pid)
                return STARTUP_FAILURE
            log.warning("worker [%d] exited (status %d); starting another", worker.pid, status)
            self.workers[index] = self._start()
        return 0

    def _replace_all(self) -> None:
        """SIGHUP: a new worker for each, the old one finishing its requests meanwhile."""
        log.info("SIGHUP: replacing the workers")
        for index, old in enumerate(self.workers):
            self.workers[index] = self._start()
            self._stop(old)
            self._forget(old.pid)

    def _stop_all(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            self._wait(worker)

    def _stop(self, worker: subprocess.Popen[bytes]) -> None:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
        self._wait(worker)

    def _wait(self, worker: subprocess.Popen[bytes]) -> None:
        while worker.poll() is None:  # signals arriving meanwhile are noted, not acted on
            self._sleep(0.1)

    def _forget(self, pid: int) -> None:
        """A dead worker's live gauges leave the sums, as prometheus-client's multiprocess mode
        asks; imported only then, so the supervisor stays small."""
        if self.config.metrics_dir:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, self.config.metrics_dir)  # type: ignore[no-untyped-call]


def main(argv: list[str]) -> int:
    config = SupervisorConfig.from_json(argv[1])
    logging.config.dictConfig(logging_config(config.log_level, config.log_format))
    try:
        sock = bind(config.host, config.port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", config.host, config.port, exc)
        return 1
    return Supervisor(config, sock).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
