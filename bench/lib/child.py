"""Run one benchmark function in a fresh interpreter and report its result and peak memory.

Peak memory is the child's own VmHWM (high-water resident set of its address space). Linux carries the
parent's peak across fork + exec into ru_maxrss (both RUSAGE_SELF in the child and RUSAGE_CHILDREN in the
parent), so a big orchestrator would inflate those; VmHWM starts afresh with the new program.

    python bench/lib/child.py module:function ARGS.json RESULT.json     (the child side)
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[1]


@dataclass
class ChildResult:
    result: dict[str, Any] = field(default_factory=dict)
    peak_rss_mb: float | None = None
    seconds: float = 0.0
    error: str | None = None


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def end_group(group: int) -> None:
    """Kills what is left of a child's process group (the group id is the child's pid)."""
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_child(
    target: str, kwargs: dict[str, Any], timeout: float | None = None, env: dict[str, str] | None = None
) -> ChildResult:
    """Calls bench `module:function(**kwargs)` in a new process; never raises for the child's failures."""
    with tempfile.TemporaryDirectory(prefix="segflow-bench-") as tmp:
        args, out = Path(tmp) / "args.json", Path(tmp) / "result.json"
        args.write_text(json.dumps(kwargs))
        started = time.perf_counter()
        # Its own session, so a timeout also ends what the child started (a moto server, say).
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), target, str(args), str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        try:
            _, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            end_group(process.pid)
            process.communicate()
            return ChildResult(
                seconds=time.perf_counter() - started, error=f"timed out after {timeout:.0f} s"
            )
        seconds = time.perf_counter() - started
        end_group(process.pid)  # anything the child left running (a server a crash did not stop)
        if process.returncode != 0 or not out.exists():
            tail = "\n".join((stderr or "").strip().splitlines()[-6:])
            return ChildResult(seconds=seconds, error=f"exit {process.returncode}: {tail}")
        payload = json.loads(out.read_text())
        return ChildResult(payload["result"], payload["peak_rss_mb"], seconds)


def _child_main(target: str, args_path: str, out_path: str) -> None:
    sys.path.insert(0, str(BENCH))
    module_name, function_name = target.split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    result = function(**json.loads(Path(args_path).read_text()))
    Path(out_path).write_text(json.dumps({"result": result, "peak_rss_mb": peak_rss_mb()}, default=str))


if __name__ == "__main__":
    _child_main(*sys.argv[1:4])
