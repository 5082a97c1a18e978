"""Disk added by Keel's core install to a virtualenv that already has numpy, pandas, sklearn.

Run from the repository root (needs the package registries; takes a minute or two):

    python benchmarks/bench_footprint.py

Target: the core install (no extras) adds <= 250 MB.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        venv = Path(folder) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "numpy", "pandas", "scikit-learn"], check=True)
        before = size_mb(venv)
        subprocess.run([*pip, str(ROOT)], check=True)
        after = size_mb(venv)
    print(f"{'venv with numpy+pandas+sklearn':<34} {before:>8.1f} MB")
    print(f"{'after pip install keel-ml':<34} {after:>8.1f} MB")
    print(f"{'added by keel-ml (target <= 250)':<34} {after - before:>8.1f} MB")


if __name__ == "__main__":
    main()
