"""Starts the real API (gunicorn, gevent workers) and consumer processes for a test, and stops them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import requests

from coupon.settings import load_settings
from workers.schedule import register_all

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> object:
    """Poll a condition until it holds (returns its value) or fail with a message after `timeout`."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception as exc:  # the thing may not be up yet
            last_exc = exc
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_exc})" if last_exc else "")
    )


class Proc:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115  (closed in stop(), after the child exits)
        self.popen = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 30) -> int | None:
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._log.close()
        return self.popen.returncode

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.popen.wait(10)


class Stack:
    """One test's processes, sharing an environment (DB, Redis db, Kafka topic, consumer group)."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: list[Proc] = []
        self.base_url = ""

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        proc = Proc(name, argv, env or self.env, self.log_dir / f"{name}-{len(self.procs)}.log")
        self.procs.append(proc)
        return proc

    def start_api(
        self, workers: int = 1, port: int | None = None, app: str = "wsgi:app", metrics_dir: bool = True
    ) -> str:
        """gunicorn on `port` (a free one by default); one worker unless the test is about several (each worker is
        one more import of the app, the CPU the suite runs short of). Its metrics folder is in the test's own
        folder (one PROMETHEUS_MULTIPROC_DIR in the caller's shell would be shared by every API, and a master the
        test SIGKILLs leaves its folder behind); metrics_dir=False lets gunicorn.conf.py make one."""
        port = port or free_port()
        env = dict(self.env, API_PORT=str(port), WEB_CONCURRENCY=str(workers))
        if metrics_dir:
            env["PROMETHEUS_MULTIPROC_DIR"] = str(self.log_dir / f"metrics-{port}")
        else:
            env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        proc = self._spawn("api", [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", app], env)
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            if not proc.alive():
                raise AssertionError(f"gunicorn exited:\n{proc.log()[-3000:]}")
            return requests.get(url + "/health", timeout=1).status_code == 200

        wait_for(up, 30, "the API to answer /health")
        if not self.base_url:
            self.base_url = url
        return url

    def start_api_and_consumer(self) -> str:
        """Both at once: the consumer joins its group while gunicorn boots."""
        consumer = self.start_consumer(wait_assigned=False)
        url = self.start_api()
        # Listed after the API, as when they start one after the other: tests take stack.procs[-1] as the consumer.
        self.procs.remove(consumer)
        self.procs.append(consumer)
        self.wait_assigned(consumer)
        return url

    def start_consumer(self, wait_assigned: bool = True) -> Proc:
        proc = self._spawn("consumer", [sys.executable, "-m", "workers.consumer"])
        if wait_assigned:
            self.wait_assigned(proc)
        return proc

    def wait_assigned(self, proc: Proc, timeout: float = 60) -> None:
        def assigned() -> bool:
            if not proc.alive():
                raise AssertionError(f"consumer exited:\n{proc.log()[-3000:]}")
            return (
                "partitions assigned: [" in proc.log() and "partitions assigned: []" not in proc.log().splitlines()[-1]
            )

        wait_for(assigned, timeout, "the consumer to be assigned partitions", interval=0.1)

    def start_retry_machinery(self) -> list[Proc]:
        """Register the periodic jobs, then run rqscheduler and an rq worker (in-process jobs)."""
        url = self.env["RQ_REDIS_URL"]
        # What `python -m workers.schedule` does, in this process, configured from the stack's env alone (as
        # as tests/support/cli.py runs commands): a process of its own cost a second of CPU to start, and test_retry_ops
        # runs the command itself.
        with mock.patch.dict(os.environ, self.env, clear=True):
            register_all(load_settings())
        bin_dir = Path(sys.executable).parent
        scheduler = self._spawn(
            "rqscheduler", [sys.executable, "-m", "workers.rq_scheduler", "--url", url, "-i", "0.5"]
        )
        worker = self._spawn(
            "rqworker",
            [str(bin_dir / "rq"), "worker", "--url", url, "--worker-class", "workers.rq_worker.Worker", "coupon-retry"],
        )
        return [scheduler, worker]

    def start_schedule_watcher(self, every: float = 1.0) -> Proc:
        """`python -m workers.schedule --watch`: registers the periodic job again when Redis has lost it."""
        return self._spawn(
            "schedule-watcher", [sys.executable, "-m", "workers.schedule", "--watch", "--every", str(every)]
        )

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.alive():
                proc.stop()


@contextmanager
def api_and_consumer(env: dict[str, str], log_dir: Path) -> Iterator[Stack]:
    """A Stack with the API and one consumer running (base_url set); everything is stopped afterwards."""
    stack = Stack(env, log_dir)
    try:
        stack.start_api_and_consumer()
        yield stack
    finally:
        stack.stop()
