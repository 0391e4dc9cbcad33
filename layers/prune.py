"""Drop what a Lambda layer never runs: test suites, caches, C/Cython sources and headers, and the
symbol tables of shared objects (aarch64-linux-gnu-strip --strip-unneeded, when the tool is installed:
Debian's binutils-aarch64-linux-gnu; it saves about 21 MB across the data and science layers).

Usage: prune.py DIR [--without NAME ...]   (NAME: top-level packages another layer already provides)
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
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


def strip_shared_objects(root: Path) -> str:
    tool = shutil.which("aarch64-linux-gnu-strip") or shutil.which("llvm-strip")
    if tool is None:
        return "no aarch64 strip tool: shared objects kept their symbols (install binutils-aarch64-linux-gnu)"
    libraries = [p for p in root.rglob("*.so*") if p.is_file() and not p.is_symlink() and _is_elf(p)]
    for start in range(0, len(libraries), 200):
        subprocess.run([tool, "--strip-unneeded", *map(str, libraries[start : start + 200])], check=True)
    return f"stripped {len(libraries)} shared objects with {Path(tool).name}"


def _is_elf(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"\x7fELF"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("--without", nargs="*", default=[])
    args = parser.parse_args()
    print(f"pruned {prune(args.root, args.without)} paths from {args.root}")
    print(strip_shared_objects(args.root))


if __name__ == "__main__":
    main()
