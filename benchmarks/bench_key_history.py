"""Cost of the key-history check (``<key>.unique_history``) as a source's history grows.

Builds V published versions of R rows x 20 columns each (Parquet in a local artifact
store), then checks a new batch of B rows (half its keys already published) against them:
loading the published keys the batch also holds (digest check of each blob + a DuckDB
read of the key column) and counting new and repeated keys. Two ways to read history:
the versions' full Parquet blobs (versions published before key indexes existed) and
their key indexes (what ``keel ingest`` writes at publish now). Medians of ``--repeat``.
With ``--composite`` the key is two columns (``a`` text, ``b`` a number: a composite key,
``key: [a, b]``) instead of the one text column ``k``.

Run from the repository root with the project's virtualenv active:

    python benchmarks/bench_key_history.py [--rows 1000000] [--versions 1 5 20] [--repeat 3]
        [--composite]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from keel.data.batch import Batch
from keel.data.history import count_keys, key_index, load_keys
from keel.data.model import DataVersion
from keel.store.artifacts import ArtifactStore

COLUMNS = 20
KEYS: tuple[str, ...] = ("k",)


def _select(first: int, rows: int) -> str:
    extra = ", ".join(f"random() AS c{i}" for i in range(COLUMNS - len(KEYS)))
    if len(KEYS) == 1:
        key = f"'k_' || (i + {first})::VARCHAR AS k"
    else:
        key = f"'a_' || ((i + {first}) // 1000)::VARCHAR AS a, (i + {first}) % 1000 AS b"
    return f"SELECT {key}, {extra} FROM range({rows}) t(i)"


def _versions(store: ArtifactStore, folder: Path, count: int, rows: int) -> list[DataVersion]:
    versions = []
    named = {"column": KEYS[0]} if len(KEYS) == 1 else {"columns": list(KEYS)}
    for n in range(count):
        with Batch.from_sql(_select(n * rows, rows)) as batch:
            digest = store.put_file(batch.write_parquet(folder / f"v{n}.parquet"))
            index = store.put_file(key_index(batch, KEYS, folder / f"k{n}.parquet"))
            schema = dict(batch.schema)
        lineage = {"key_index": {**named, "artifact": index}}
        versions.append(DataVersion(f"v{n}", "s", digest, rows, schema, 0.0, None,
                                    lineage=lineage))  # fmt: skip
    return versions


def _check(store: ArtifactStore, versions: list[DataVersion], first: int, rows: int) -> float:
    with Batch.from_sql(_select(first, rows)) as batch:
        start = time.perf_counter()
        table = load_keys(batch, store, versions, KEYS)
        assert table is not None
        found = count_keys(batch, KEYS, table)
        took = time.perf_counter() - start
    assert found.seen_rows == rows // 2, found
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per version")
    parser.add_argument("--batch", type=int, default=100_000, help="rows in the new batch")
    parser.add_argument("--versions", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--composite", action="store_true", help="a two-column key")
    args = parser.parse_args()
    global KEYS
    KEYS = ("a", "b") if args.composite else ("k",)
    print("| versions | rows published | batch rows | full Parquet (s) | key index (s) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="keel-bench-") as folder:
        store = ArtifactStore(Path(folder) / "artifacts")
        indexed = _versions(store, Path(folder), max(args.versions), args.rows)
        for count in args.versions:
            first = count * args.rows - args.batch // 2  # half the batch repeats old keys
            timed = {}
            for name, versions in (
                ("full", [replace(v, lineage={}) for v in indexed[:count]]),
                ("index", indexed[:count]),
            ):
                runs = [_check(store, versions, first, args.batch) for _ in range(args.repeat)]
                timed[name] = statistics.median(runs)
            print(f"| {count} | {count * args.rows:,} | {args.batch:,} | {timed['full']:.3f} "
                  f"| {timed['index']:.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
