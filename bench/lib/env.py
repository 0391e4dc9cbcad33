"""Where and with what the benchmark ran: machine, versions, git commit, command, date."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

KEY_PACKAGES = (
    "numpy",
    "pandas",
    "fastparquet",
    "scikit-learn",
    "scipy",
    "pydantic",
    "boto3",
    "moto",
    "aws-lambda-powertools",
    "rapidfuzz",
    "lifetimes",
)


def memory_mb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def git_commit(repo: Path) -> str:
    """The commit, with "+uncommitted changes" when the working tree differs from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" + uncommitted changes" if dirty else "")


def environment(repo: Path, command: str) -> dict[str, Any]:
    uname = platform.uname()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "uname": f"{uname.system} {uname.release} {uname.machine}",
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "memory_mb": memory_mb(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "executable": sys.executable,
        "packages": package_versions(),
        "git": git_commit(repo),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
