"""The Dask engine: partitions run as tasks on a Dask cluster.

With a scheduler address Keel connects to that cluster; without one it starts a local
cluster (worker processes on this machine) for the command and stops it afterwards. The
shared value is one task every partition's task depends on (computed once per worker
that needs it; unlike scattered data, the scheduler can run it again when every worker
holding it has died). A worker that dies mid-job has its tasks run again elsewhere by
Dask; a task that keeps killing workers (one partition that needs more memory than a
worker's limit) ends the job with one sentence naming that partition and the limit, and
nothing has been published by then (callers publish after the last result). Each
result is released on the cluster once the caller has it, so workers do not hold every
partition's result until the job ends.

Before its client, Keel asks the scheduler who it is, the whole exchange bounded by the
connect timeout: distributed bounds reaching the address but not the handshake after it,
so something that accepts the connection and never answers (a stale port forwarded
nowhere, another service, a load balancer) would hold the client forever.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import warnings
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from keel.errors import ComputeError, KeelError, MissingExtraError

__all__ = ["DaskEngine"]


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise MissingExtraError("distributed", "dask") from None
    return distributed


class DaskEngine:
    """A Dask client, and the local cluster behind it when Keel started one."""

    name = "dask"

    def __init__(self, client: Any, cluster: Any = None) -> None:
        self.client = client
        self.cluster = cluster

    @classmethod
    def connect(cls, address: str | None, timeout: float, workers: int = 2) -> DaskEngine:
        """A client of the scheduler at ``address``, or of a new local cluster."""
        distributed = _distributed()
        if address is None:
            # loopback only; the warning that port 8787 is taken (the scheduler's HTTP
            # endpoint then takes another) says nothing a user of the command can act on
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Port 8787 is already in use")
                cluster = distributed.LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            return cls(distributed.Client(cluster, set_as_default=False), cluster)
        _check_scheduler(distributed, address, timeout)
        try:
            client = distributed.Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as error:
            raise ComputeError(_unreachable(address, timeout)) from error
        return cls(client)

    @property
    def address(self) -> str:
        return str(self.client.scheduler.address)

    def workers(self) -> int:
        """How many workers the scheduler knows now: its count, which the client's
        periodic refresh keeps too (that refresh can replace the fetched worker list
        with an empty one before this reads it)."""
        info = self.client.scheduler_info(n_workers=-1)
        count = info.get("n_workers")
        return int(count) if count is not None else len(info.get("workers", {}))

    def map(
        self, fn: Callable[[Any, Any], Any], shared: Any, items: Sequence[Any]
    ) -> Generator[tuple[int, Any], None, None]:
        distributed = _distributed()
        if not items:
            return
        token = uuid.uuid4().hex[:12]
        given = self._shared(shared, token)
        keys = [f"keel-{getattr(fn, '__name__', 'task')}-{token}-{i}" for i in range(len(items))]
        futures = self.client.map(fn, [given] * len(items), items, key=keys, pure=False)
        position = {future.key: i for i, future in enumerate(futures)}
        try:
            for future in distributed.as_completed(futures, loop=self.client.loop):
                index = position.pop(future.key)
                result = _result(future, _item_name(items[index], index, len(items)))
                future.release()  # the worker frees it now, not when the whole job ends
                yield index, result
        finally:
            self._stop([future for future in futures if future.key in position], given)

    def shuffle(
        self,
        fn: Callable[[Any, Any], tuple[Any, Sequence[Any]]],
        shared: Any,
        items: Sequence[Any],
        buckets: int,
        reduce: Callable[[Any, list[Any]], Any],
    ) -> Generator[tuple[Literal["item", "bucket"], int, Any], None, None]:
        """One graph, submitted at once: each item's task, then small tasks
        taking its result (fetched by the client) and each of its pieces (which stay on the
        worker that made them until the task reducing their bucket fetches them), then one
        reduction per bucket. A bucket is reduced as soon as every item is done, with no
        round trip through the client in between."""
        distributed = _distributed()
        if not items:
            return
        name, token = getattr(fn, "__name__", "task"), uuid.uuid4().hex[:12]
        given = self._shared(shared, token)
        count = len(items)
        mapped = self.client.map(
            fn, [given] * count, items, pure=False,
            key=[f"keel-{name}-{token}-{i}" for i in range(count)],
        )  # fmt: skip
        results = self._taken(_own, mapped, None, f"keel-result-{token}")
        pieces = [
            self._taken(_piece, mapped, bucket, f"keel-piece-{token}-{bucket}")
            for bucket in range(buckets)
        ]
        reduced = [
            self.client.submit(
                reduce, given, pieces[bucket], key=f"keel-reduce-{token}-{bucket}", pure=False
            )
            for bucket in range(buckets)
        ]
        names = {f.key: _item_name(items[i], i, count) for i, f in enumerate(mapped)}
        del mapped, pieces  # held by the scheduler only until their dependents have run
        position = {future.key: i for i, future in enumerate(results)}
        bucket_of = {future.key: i for i, future in enumerate(reduced)}
        stray = None
        try:
            for future in distributed.as_completed([*results, *reduced], loop=self.client.loop):
                blamed = _blamed(future)
                if blamed is not None and blamed not in names:
                    # a small task lost beside the partition that killed its worker: wait
                    # for that partition's own failure, which names it
                    stray = stray or future
                    continue
                said = names.get(blamed or "", "a partition")
                if future.key in position:
                    result = _result(future, said)
                    future.release()
                    yield "item", position.pop(future.key), result
                else:
                    yield "bucket", bucket_of[future.key], _result(future, said)
            if stray is not None:
                _result(stray)
        finally:
            self._stop([*(f for f in results if f.key in position), *reduced], given)

    def _taken(
        self, take: Callable[[Any, Any], Any], futures: list[Any], bucket: int | None, prefix: str
    ) -> list[Any]:
        """``take(output, bucket)`` of each of ``futures``' outputs, as tasks beside them
        named ``prefix-<position>``."""
        keys = [f"{prefix}-{i}" for i in range(len(futures))]
        return list(self.client.map(take, futures, [bucket] * len(futures), key=keys))

    def _shared(self, shared: Any, token: str) -> Any:
        """``shared`` as a task, not scattered data: the scheduler keeps it and runs it
        again if every worker holding it dies, so a partition that kills workers is retried
        (then named); boxed, so a tuple or dict is sent as one value, not taken apart."""
        return self.client.submit(_unbox, _Box(shared), key=f"keel-shared-{token}", pure=False)

    def _stop(self, pending: list[Any], given: Any) -> None:
        """Cancel the ``pending`` futures and release ``given``. Not cancel ``given``: that
        reaches its dependents, and on one no client wants any more (a released result)
        the scheduler's cancel fails an assertion and drops this client's connection."""
        self.client.cancel(pending)
        given.release()

    @contextmanager
    def held(self, fetch: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[list[Any]]:
        """A task per item running ``fetch(item)``, its result kept in the cluster for the
        block: a later task taking it runs beside it, or has it sent from worker to
        worker. Released, not cancelled, after the block (cancelling one whose dependents
        are released fails the scheduler's assertion; see ``_stop``)."""
        token = uuid.uuid4().hex[:12]
        name = getattr(fetch, "__name__", "held")
        keys = [f"keel-{name}-{token}-{i}" for i in range(len(items))]
        futures = list(self.client.map(fetch, list(items), key=keys, pure=False)) if items else []
        try:
            yield futures
        finally:
            for future in futures:
                future.release()

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


class _Box:
    """One value a task receives whole (Dask looks into tuples, lists and dicts)."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _unbox(box: _Box) -> Any:
    return box.value


def _own(output: tuple[Any, Sequence[Any]], _: None) -> Any:
    """A shuffled item's own result."""
    return output[0]


def _piece(output: tuple[Any, Sequence[Any]], bucket: int) -> Any:
    """A shuffled item's piece of ``bucket``."""
    return output[1][bucket]


def _blamed(future: Any) -> str | None:
    """The task a failed future's KilledWorker blames (its own, or the dependency that
    failed); None when it did not fail so."""
    from distributed.scheduler import KilledWorker

    if future.status != "error":
        return None
    error = future.exception()
    return str(error.task) if isinstance(error, KilledWorker) else None


def _result(future: Any, item: str = "a partition") -> Any:
    """A task's result; a task whose workers kept dying becomes one sentence naming the
    item (and the workers' memory limit), Keel's own errors pass through as raised on the
    worker, anything else is a bug and keeps its traceback."""
    from distributed.scheduler import KilledWorker

    try:
        return future.result()
    except KilledWorker as error:
        raise ComputeError(_killed(item, error)) from None
    except KeelError:
        raise


def _killed(item: str, error: Any) -> str:
    """What to say when ``item``'s task killed every worker that ran it (KilledWorker)."""
    from dask.utils import format_bytes

    tries = error.allowed_failures + 1
    limit = getattr(error.last_worker, "memory_limit", None)
    if limit:
        return (
            f"{item} killed every Dask worker that ran it ({tries} tries, each worker "
            f"limited to {format_bytes(limit)}), most likely by needing more memory than "
            "that; give the workers more (dask worker --memory-limit) or cut it into "
            "smaller files; nothing was published"
        )
    return (
        f"{item} was tried on {tries} Dask workers and each died while running it; check "
        "the workers' memory and logs, then run the command again; nothing was published"
    )


def _item_name(item: Any, index: int, total: int) -> str:
    """How an error names a map's item: its file (a path, a ``(where, name)`` pair, an
    object with a ``name``), else its position."""
    if isinstance(item, tuple) and item and isinstance(item[-1], str):
        item = item[-1]
    named = item if isinstance(item, str) else getattr(item, "name", None)
    if isinstance(named, str):
        return f"the partition {named}"
    return f"partition {index + 1} of {total}"


def _check_scheduler(distributed: Any, address: str, timeout: float) -> None:
    """Raise ComputeError unless a Dask scheduler answers at ``address`` within
    ``timeout``."""
    kind = asyncio.run(_identity(distributed, address, timeout))
    if kind in ("Worker", "Nanny"):  # not "!= Scheduler": a scheduler may be a subclass
        raise ComputeError(_not_scheduler(address, kind))


async def _identity(distributed: Any, address: str, timeout: float) -> str:
    """The ``type`` the Dask server at ``address`` gives in its identity; ComputeError
    when nothing answers within ``timeout`` (or it hangs up) and when what answers does
    not speak Dask's protocol."""
    args = _client_security(distributed, address).get_connection_args("client")
    try:
        async with (
            asyncio.timeout(timeout),
            distributed.rpc(address, timeout=timeout, connection_args=args) as remote,
        ):
            identity = await remote.identity()
    except OSError as error:  # nothing listens, it said nothing in time, or it hung up
        raise ComputeError(_unreachable(address, timeout)) from error
    except Exception as error:  # what it sent did not parse as Dask's messages
        raise ComputeError(_not_dask(address)) from error
    return str(identity.get("type"))


def _client_security(distributed: Any, address: str) -> Any:
    """The ``Security`` a ``Client`` of ``address`` uses when given none: what the loader
    named by ``distributed.client.security-loader`` returns for it (a site's TLS
    credentials), else the one dask's configuration describes."""
    import dask

    term = dask.config.get("distributed.client.security-loader", None)
    found = distributed.utils.import_term(term)({"address": address}) if term else None
    if found is None or found is False:
        return distributed.Security()
    return distributed.Security(**found) if isinstance(found, dict) else found


def _unreachable(address: str, timeout: float) -> str:
    return (
        f"no Dask scheduler answered at {address} within {timeout:g} s; start one "
        "(dask scheduler) or fix compute.address / $KEEL_DASK_ADDRESS in keel.yaml"
    )


def _not_dask(address: str) -> str:
    return (
        f"what answers at {address} is not a Dask scheduler (it does not speak Dask's "
        "protocol); fix compute.address / $KEEL_DASK_ADDRESS in keel.yaml to the "
        "scheduler's address (port 8786 unless it was started with another)"
    )


def _not_scheduler(address: str, kind: str) -> str:
    return (
        f"{address} is a Dask {kind.lower()}, not the scheduler; fix compute.address / "
        "$KEEL_DASK_ADDRESS in keel.yaml to the scheduler's address (port 8786 unless it "
        "was started with another)"
    )
