"""Unzipped size of each built function with its layers, against Lambda's 250 MB limit.

Reads the template `sam build` wrote (.aws-sam/build/template.yaml) and measures the folders it points
to. Usage: python -m segflow_local.sizes [.aws-sam/build]
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from segflow_local.template import load_template

LIMIT_MB = 250.0


def folder_mb(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            file = Path(root) / name
            if not file.is_symlink():
                total += file.stat().st_size
    return total / 1_000_000


def measure(build_dir: Path) -> list[dict[str, Any]]:
    template = load_template(build_dir / "template.yaml")
    resources = template["Resources"]
    layers = {
        name: folder_mb(build_dir / res["Properties"]["ContentUri"])
        for name, res in resources.items()
        if res["Type"] == "AWS::Serverless::LayerVersion"
    }
    rows = []
    for name, res in sorted(resources.items()):
        if res["Type"] != "AWS::Serverless::Function":
            continue
        props = res["Properties"]
        used = [layer["Ref"] for layer in props.get("Layers", []) if isinstance(layer, dict) and "Ref" in layer]
        code = folder_mb(build_dir / props["CodeUri"])
        total = code + sum(layers[layer] for layer in used)
        rows.append({"function": name, "code_mb": code, "layers": {u: layers[u] for u in used}, "total_mb": total})
    return rows


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    build_dir = Path(args[0] if args else ".aws-sam/build")
    rows = measure(build_dir)
    print(f"{'function':<28}{'code MB':>9}  {'layers (MB)':<60}{'total MB':>9}  limit {LIMIT_MB:.0f}")
    failed = False
    for row in rows:
        layers = ", ".join(f"{k} {v:.1f}" for k, v in row["layers"].items())
        verdict = "ok" if row["total_mb"] <= LIMIT_MB else "OVER"
        failed |= verdict == "OVER"
        print(f"{row['function']:<28}{row['code_mb']:>9.1f}  {layers:<60}{row['total_mb']:>9.1f}  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
