"""`make bench-compare`: the same bench stages on a base commit and on this working tree, alternating, so a change is
measured against what it changes on the same machine in the same hour.

The base is checked out as a git worktree under .local/bench-base/<commit> (its .local linked to this tree's, so
both use the services `make bench` starts and their pid files); it reuses this tree's .venv when the requirements
are the same, else it gets its own. Each pair runs base then new, the next new then base (ABBA), so a machine
getting busier or quieter shows as spread, not as a difference. Every run writes bench/results/latest.json; this
keeps each one, and prints (and writes to bench/results/compare.md) the figures of issue 33 side by side:
per run, the median per side, and the median of the per-pair ratios new/base.

    .venv/bin/python bench/compare.py --base <commit> [--pairs 2] [--only issue,openloop,flash] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BASE_DIR = ROOT / ".local" / "bench-base"
RUNS_DIR = ROOT / ".local" / "bench-compare"
DEFAULT_BASE_FILE = ROOT / "bench" / "BASELINE"

Extract = Callable[[dict[str, Any]], float | None]


def _get(*path: str) -> Extract:
    def extract(results: dict[str, Any]) -> float | None:
        node: Any = results
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return float(node) if isinstance(node, int | float) else None

    return extract


# (label, extractor, target ratio new/base, True when lower is better)
MEASURES: list[tuple[str, Extract, float, bool]] = [
    ("API CPU µs per accepted issue request (issue alone)", _get("issue", "cpu_us_per_request", "api"), 0.65, True),
    ("closed-loop issue req/s, consumer draining", _get("issue_draining", "rps"), 1.3, False),
    ("closed-loop issue p99 ms, consumer draining", _get("issue_draining", "latency", "p99"), 1.0, True),
    ("open-loop p99 ms at 1,000 req/s, consumer draining", _get("open_loop_draining", "p99_ms"), 0.6, True),
    ("CPU µs per coupon end to end (steady)", _get("steady_cost", "total_us_per_coupon"), 1.0, True),
    ("10,000-user flash sale: s until the last reply", _get("flash_sale", "seconds_until_last_reply"), 0.75, True),
    ("GET /health req/s (ceiling)", _get("ceiling", "rps"), 1.0, False),
]


def say(msg: str) -> None:
    print(f"[compare] {msg}", flush=True)


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def base_tree(rev: str) -> tuple[Path, Path]:
    """The worktree of `rev` and the Python to run its bench with."""
    commit = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    tree = BASE_DIR / commit[:12]
    if not (tree / "bench" / "bench.py").exists():
        say(f"checking out {commit[:12]} into {tree.relative_to(ROOT)}")
        BASE_DIR.mkdir(parents=True, exist_ok=True)
        git("worktree", "add", "--force", "--detach", str(tree), commit)
    local = tree / ".local"
    if not local.is_symlink():
        shutil.rmtree(local, ignore_errors=True)
        local.symlink_to(ROOT / ".local")
    same = all(
        (tree / "requirements" / f).read_bytes() == (ROOT / "requirements" / f).read_bytes()
        for f in ("base.txt", "dev.txt")
    )
    if same:
        return tree, ROOT / ".venv" / "bin" / "python"
    venv = BASE_DIR / f"{commit[:12]}-venv"
    say(f"the base's requirements differ: installing them into {venv.relative_to(ROOT)}")
    subprocess.run([str(tree / "scripts" / "venv.sh")], env=dict(os.environ, VENV=str(venv)), check=True)
    return tree, venv / "bin" / "python"


def run_side(label: str, tree: Path, python: Path, bench_args: list[str], index: int) -> dict[str, Any]:
    say(f"run {index}: {label} ({tree})")
    started = time.monotonic()
    subprocess.run([str(python), "bench/bench.py", *bench_args], cwd=tree, check=True)
    results: dict[str, Any] = json.loads((tree / "bench" / "results" / "latest.json").read_text())
    RUNS_DIR.mkdir(parents=True, exist_ok=True)
    (RUNS_DIR / f"{index:02d}-{label}.json").write_text(json.dumps(results, indent=1))
    say(f"run {index}: {label} done in {time.monotonic() - started:.0f} s")
    return results


def fmt(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def report(base_rev: str, pairs: list[tuple[dict[str, Any], dict[str, Any]]], order: list[str]) -> str:
    lines = [
        f"Base {base_rev} against the working tree at {git('rev-parse', '--short', 'HEAD')}"
        f"{' (with uncommitted changes)' if git('status', '--porcelain', '--untracked-files=no') else ''};"
        f" {len(pairs)} pairs, run order {' '.join(order)}.",
        "",
        "| measure | base, per run | new, per run | ratio new/base per pair (median) | target |",
        "|---|---|---|---|---|",
    ]
    for label, extract, target, lower_better in MEASURES:
        base_values = [extract(b) for b, _ in pairs]
        new_values = [extract(n) for _, n in pairs]
        ratios = [n / b for b, n in zip(base_values, new_values) if b and n is not None]
        if not ratios and all(v is None for v in base_values + new_values):
            continue
        median = statistics.median(ratios) if ratios else None
        met = "" if median is None else (" ✓" if (median <= target if lower_better else median >= target) else " ✗")
        lines.append(
            f"| {label} | {', '.join(fmt(v) for v in base_values)} | {', '.join(fmt(v) for v in new_values)} |"
            f" {', '.join(f'×{r:.3f}' for r in ratios)} ({'–' if median is None else f'×{median:.3f}'}){met} |"
            f" {'≤' if lower_better else '≥'} ×{target} |"
        )
    flash = [n.get("flash_sale") for _, n in pairs if n.get("flash_sale")]
    if flash:
        lines += ["", "New side's flash sales: " + "; ".join(f"exact {f['exact']}, 5xx {f['five_xx']}" for f in flash)]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_base = DEFAULT_BASE_FILE.read_text().split()[0] if DEFAULT_BASE_FILE.exists() else None
    ap.add_argument("--base", default=default_base, help="the commit to compare against (default: bench/BASELINE)")
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--only", default="issue,openloop,flash", help="bench stages, as bench.py --only")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="bench.py --quick: a smoke test of the comparison")
    args = ap.parse_args()
    if not args.base:
        sys.exit("bench/compare.py: no --base and no bench/BASELINE")
    tree, python = base_tree(args.base)
    bench_args = ["--only", args.only, "--seconds", str(args.seconds), *(["--quick"] if args.quick else [])]
    sides = {"base": (tree, python), "new": (ROOT, ROOT / ".venv" / "bin" / "python")}
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    order: list[str] = []
    for i in range(args.pairs):
        first, second = ("base", "new") if i % 2 == 0 else ("new", "base")
        got = {}
        for label in (first, second):
            got[label] = run_side(label, *sides[label], bench_args, len(order) + 1)
            order.append(label)
        pairs.append((got["base"], got["new"]))
    text = report(args.base, pairs, order)
    (ROOT / "bench" / "results" / "compare.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
