"""Building pilots in a temporary folder: files from a dict, notebooks from cell sources."""

from __future__ import annotations

import json
from pathlib import Path

from keel.audit import Finding, audit


def write_pilot(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write each relative path's content under ``root``; return ``root``."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def notebook(*cells: str) -> str:
    """An nbformat 4 notebook: a markdown title, then one code cell per source."""
    code = [
        {
            "cell_type": "code",
            "execution_count": n,
            "metadata": {},
            "outputs": [],
            "source": source.splitlines(keepends=True),
        }
        for n, source in enumerate(cells, start=1)
    ]
    title = {"cell_type": "markdown", "metadata": {}, "source": ["# Pilot"]}
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [title, *code]})


def found(root: Path, files: dict[str, str | bytes], kind: str) -> list[Finding]:
    """The findings of ``kind`` when auditing a pilot made of ``files``."""
    write_pilot(root, files)
    return [finding for finding in audit(root).findings if finding.kind == kind]
