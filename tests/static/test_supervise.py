"""scripts/supervise.sh (the restart loop of `make run`): restarts with a log line and backoff, stops on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from harness.processes import wait_for

ROOT = Path(__file__).resolve().parents[2]
SUPERVISE = ROOT / "scripts" / "supervise.sh"


def _supervisor(tmp_path: Path, child: str, **env: str) -> tuple[subprocess.Popen, Path]:
    """`supervise flaky bash -c CHILD` in a bash of its own; its stderr (the log lines) goes to a file."""
    log = tmp_path / "supervisor.log"
    script = f'source "{SUPERVISE}"; supervise flaky bash -c {_quote(child)}'
    proc = subprocess.Popen(
        ["bash", "-c", script],
        stdout=open(log, "ab"),  # noqa: SIM115  (the child owns it; closed when it exits)
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "SUPERVISE_MIN_DELAY": "0.2", "SUPERVISE_MAX_DELAY": "0.8", **env},
    )
    return proc, log


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); its state in /proc says it has exited.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def test_a_child_that_exits_is_restarted_with_a_log_line_and_a_growing_delay(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    proc, log = _supervisor(tmp_path, f"echo started >> {starts}; exit 3")
    restarts = re.compile(r"\[run\] flaky exited \(code 3\); restarting in ([0-9.]+)s")
    try:
        # Four restarts logged (the fourth start alone may come before its own exit's line).
        wait_for(lambda: len(restarts.findall(log.read_text())) >= 4, 15, "four restarts of the child")
        assert proc.poll() is None, "the supervisor itself must keep running"
        assert len(starts.read_text().splitlines()) >= 4
        delays = [float(d) for d in restarts.findall(log.read_text())]
        assert delays[:4] == [0.2, 0.4, 0.8, 0.8], log.read_text()  # doubles, then stays at the cap
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def test_a_run_that_lasted_resets_the_delay(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    # Every run lasts 1.1 s, which counts as stable here (1 s), so each restart waits the minimum again.
    proc, log = _supervisor(tmp_path, f"echo started >> {starts}; sleep 1.1; exit 1", SUPERVISE_STABLE_SECONDS="1")
    try:
        wait_for(lambda: starts.exists() and len(starts.read_text().splitlines()) >= 3, 20, "three starts")
        delays = re.findall(r"restarting in ([0-9.]+)s", log.read_text())
        assert delays[:2] == ["0.2", "0.2"], log.read_text()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def test_sigterm_stops_the_child_and_the_supervisor(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    proc, log = _supervisor(tmp_path, f"echo $$ > {pid_file}; exec sleep 300")
    try:
        child = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 10, "the child to start"))
        assert _alive(child)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # to the supervisor only, as run.sh's stop_all does
        assert proc.wait(10) == 0
        wait_for(lambda: not _alive(child), 10, "the child to be stopped")
        assert time.monotonic() - started < 5
        assert "restarting" not in log.read_text(), "a stop is not a crash: nothing must be restarted"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_sigterm_during_the_restart_delay_stops_the_supervisor(tmp_path: Path) -> None:
    proc, log = _supervisor(tmp_path, "exit 2", SUPERVISE_MIN_DELAY="30", SUPERVISE_MAX_DELAY="30")
    try:
        wait_for(lambda: "restarting in 30s" in log.read_text(), 10, "the first restart delay")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_run_sh_supervises_every_process_but_the_api() -> None:
    text = (ROOT / "scripts" / "run.sh").read_text()
    assert 'source "$ROOT/scripts/supervise.sh"' in text
    for name in ("consumer-$i", "rqscheduler", "schedule-watcher", "rq-worker", "rq-dashboard"):
        assert re.search(rf'^\s*supervise "?{re.escape(name)}"? .*&$', text, re.M), name
    assert re.search(r"^gunicorn .*&$", text, re.M), "the API runs unsupervised: its exit stops the stack"
    assert 'wait "$api_pid"' in text
