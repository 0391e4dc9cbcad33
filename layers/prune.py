"""Drop what a Lambda layer never runs: test suites, caches, C/Cython sources and headers.

Usage: prune.py DIR [--without NAME ...]   (NAME: top-level packages another layer already provides)
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

TEST_DIRS = {"tests", "test", "__pycache__"}
SOURCE_SUFFIXES = {".pyc", ".pyx", ".pxd", ".pxi", ".c", ".cpp", ".h", ".hpp"}


def remove(path: Path) -> int:
    if path.is_dir():
        shutil.rmtree(path)
        return 1
    if path.exists():
        path.unlink()
        return 1
    return 0


def prune(root: Path, without: list[str]) -> int:
    removed = 0
    for name in without:
        removed += remove(root / name) + remove(root / f"{name}.py")
        for info in root.glob(f"{name.replace('-', '_')}-*.dist-info"):
            removed += remove(info)
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_dir() and path.name in TEST_DIRS:
            removed += remove(path)
        elif path.is_file() and path.suffix in SOURCE_SUFFIXES:
            removed += remove(path)
    return removed + remove(root / "bin")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("--without", nargs="*", default=[])
    args = parser.parse_args()
    print(f"pruned {prune(args.root, args.without)} paths from {args.root}")


if __name__ == "__main__":
    main()
