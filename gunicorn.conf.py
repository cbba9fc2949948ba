"""gunicorn settings for the API: gevent workers, no preload (each worker patches, then imports the app)."""

import importlib.util
import multiprocessing
import os
import shutil
import tempfile

# Metrics of all workers land in one folder, aggregated by whichever worker answers /metrics. It must be
# set before any worker imports prometheus_client, and each master gets its own, emptied at start.
# A folder made here is removed when the master exits (every test run starts ~100 masters: they piled up in /tmp).
_MADE_METRICS_DIR = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _MADE_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="coupon-metrics-")
_OWN_METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"]

bind = f"{os.environ.get('API_HOST', '127.0.0.1')}:{os.environ.get('API_PORT', '8000')}"
worker_class = "gevent"
# One worker per core: the hot path is CPU-bound Python between two network waits. Measured on 2 cores
# (bench/RESULTS.md): one worker leaves a core idle, a third adds CPU per request and p99, not throughput.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
# Per worker: a 10,000-client burst on two workers (5,000 each) plus the live-stock streams (SSE) each worker holds
# open, e.g. 2,000 shoppers watching the sale (about 1,000 each); the rest would wait in the (4,096) accept backlog.
# Every connection is a file descriptor: `ulimit -n` must be above workers x this.
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "8000"))
backlog = 4096
keepalive = 30
# gunicorn's C request parser (gunicorn_h1c, pinned in requirements/base.in): the pure-Python one was 13 % of an issue
# request's API CPU (bench/profile.py). "fast" rather than "auto": a missing extension stops the start instead of
# silently costing that again.
http_parser = "fast"
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", "20"))
timeout = 30
preload_app = False
accesslog = os.environ.get("ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


def _json_formatter():
    # By path, not `import coupon...`: the package would import kafka and redis before the workers patch.
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "coupon", "observability", "log_format.py")
    spec = importlib.util.spec_from_file_location("_gunicorn_log_format", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.JsonFormatter


def _json_logger_class():
    from gunicorn.glogging import Logger

    json_formatter = _json_formatter()

    class JsonLogger(Logger):
        """gunicorn's own lines (master and workers) as JSON; the access log stays off unless ACCESS_LOG is set."""

        def setup(self, cfg):
            super().setup(cfg)
            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    handler.setFormatter(json_formatter(proc="gunicorn"))

    return JsonLogger


# Each worker's app then re-formats these handlers with the request id (coupon.observability.log_setup).
logger_class = _json_logger_class()
# Several API instances may run on one machine (tests, scale-out runs): no shared control socket.
control_socket_disable = True


def send_headers_with_the_body():
    """One send per response: gunicorn writes the status line and headers, then the body, in two sendall calls (two
    syscalls, and two segments without TCP_NOPUSH). Whenever the first body write is all the body there is (every
    JSON reply here), headers and body go out together. Streams (SSE), chunked and HEAD replies keep gunicorn's way.
    Measured by bench/profile.py: the response write was 12 % of an issue request's API CPU."""
    from gunicorn.http import wsgi

    if getattr(wsgi.Response.write, "sends_headers_with_the_body", False):
        return
    original = wsgi.Response.write

    def write(self, arg):
        if (
            self.headers_sent
            or self.chunked
            or self._omits_body
            or type(arg) is not bytes
            or self.response_length is None
            or len(arg) != self.response_length
        ):
            return original(self, arg)
        head = self.default_headers()
        head.extend([f"{k}: {v}\r\n" for k, v in self.headers])
        self.headers_sent = True
        self.sent = len(arg)
        self.sock.sendall(("".join(head) + "\r\n").encode("latin-1") + arg)
        return None

    write.sends_headers_with_the_body = True
    wsgi.Response.write = write


def date_header_once_a_second():
    """gunicorn formats every response's Date header anew with email.utils (3 % of an issue request's API CPU in
    bench/profile.py); the header changes once a second, so the text is kept for that second."""
    import time

    from gunicorn import util

    if getattr(util.http_date, "once_a_second", False):
        return
    original = util.http_date
    last = [-1, ""]  # the second, its text

    def http_date(timestamp=None):
        if timestamp is not None:
            return original(timestamp)
        second = int(time.time())
        if last[0] != second:
            last[:] = [second, original(second)]
        return last[1]

    http_date.once_a_second = True
    util.http_date = http_date


def post_worker_init(worker):
    """Connect each worker to Kafka in the background, so the first requests do not pay for it."""
    send_headers_with_the_body()
    date_header_once_a_second()
    import gc

    import gevent

    # The app's long-lived objects leave the collector's view, and young collections run less often:
    # a burst allocates many short-lived greenlets and frames.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)

    resources = worker.wsgi.extensions.get("coupon")  # coupon.resources.Resources (no import here: see above)
    publisher = getattr(resources, "publisher", None)
    if publisher is not None:
        gevent.spawn(publisher.warm_up)

    feed = getattr(resources, "stock_feed", None)
    if feed is not None:
        gevent.spawn(_end_streams_on_stop, worker, feed)


def _end_streams_on_stop(worker, feed):
    """End this worker's live-stock streams as soon as it is told to stop.

    On SIGTERM gunicorn's gevent worker only clears `worker.alive` (no hook runs); its loop then stops accepting and
    waits up to graceful_timeout for every open connection, so open streams would hold the shutdown that long. Their
    clients reconnect (retry hint, Last-Event-ID) to a live worker.
    """
    import gevent

    while worker.alive:
        gevent.sleep(0.25)
    feed.close()


def worker_int(worker):
    """SIGINT/SIGQUIT: the worker exits at once; its streams end first, cleanly."""
    resources = worker.wsgi.extensions.get("coupon") if getattr(worker, "wsgi", None) is not None else None
    feed = getattr(resources, "stock_feed", None)
    if feed is not None:
        feed.close()


def on_starting(server):
    shutil.rmtree(_OWN_METRICS_DIR, ignore_errors=True)
    os.makedirs(_OWN_METRICS_DIR, exist_ok=True)


def on_exit(server):
    if _MADE_METRICS_DIR:
        shutil.rmtree(_OWN_METRICS_DIR, ignore_errors=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
