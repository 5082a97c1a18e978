"""A decorator that logs every call of an existing ``predict`` function.

The first positional argument is taken as the inputs: a mapping is one prediction; a
list of mappings or a pandas DataFrame is a batch, logged one record per row when the
function returns one output per row. The call is timed, the outputs are returned
unchanged, and the records are durable before the wrapper returns.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar, cast

__all__ = ["logged", "to_records"]

F = TypeVar("F", bound=Callable[..., Any])


class Appender(Protocol):
    """Where the records go: a ``PredictionLog`` (this module does not import it, the log
    imports this module for ``PredictionLog.watch``)."""

    def append(self, entries: Iterable[Mapping[str, Any]]) -> list[str]: ...


def logged(
    log: Appender,
    *,
    model_version: str | None = None,
    route: str | None = None,
    confidence: Callable[[Any], float | None] | None = None,
) -> Callable[[F], F]:
    """Wrap a sync or async ``predict(inputs, ...)`` so each prediction is logged."""

    def decorate(predict: F) -> F:
        def write(inputs: Any, outputs: Any, started: float) -> None:
            latency = (time.perf_counter() - started) * 1000
            entries = to_records(inputs, outputs, latency, confidence)
            for entry in entries:
                entry.update(model_version=model_version, route=route)
            log.append(entries)

        if inspect.iscoroutinefunction(predict):

            @functools.wraps(predict)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                outputs = await predict(*args, **kwargs)
                write(_inputs_of(args, kwargs), outputs, started)
                return outputs

            return cast(F, async_wrapper)

        @functools.wraps(predict)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            outputs = predict(*args, **kwargs)
            write(_inputs_of(args, kwargs), outputs, started)
            return outputs

        return cast(F, wrapper)

    return decorate


def _inputs_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return args[0] if args else dict(kwargs)


def to_records(
    inputs: Any,
    outputs: Any,
    latency_ms: float,
    confidence: Callable[[Any], float | None] | None = None,
) -> list[dict[str, Any]]:
    """Log entries for one call: one per row for a batch, else one for the call."""
    rows = _rows_of(inputs)
    values = _plain(outputs)
    if rows is not None and isinstance(values, list) and len(values) == len(rows):
        pairs = list(zip(rows, values, strict=True))
        latency_ms = latency_ms / max(len(pairs), 1)
    else:
        single = dict(inputs) if isinstance(inputs, Mapping) else {"value": _plain(inputs)}
        pairs = [(single, values)]
    return [
        {
            "inputs": row,
            "output": value,
            "latency_ms": latency_ms,
            "confidence": confidence(value) if confidence is not None else None,
        }
        for row, value in pairs
    ]


def _rows_of(inputs: Any) -> list[dict[str, Any]] | None:
    if hasattr(inputs, "to_dict") and hasattr(inputs, "columns"):  # a DataFrame
        return [_plain(row) for row in inputs.to_dict("records")]
    if isinstance(inputs, list | tuple) and all(isinstance(row, Mapping) for row in inputs):
        return [_plain(dict(row)) for row in inputs]
    return None


def _plain(value: Any) -> Any:
    """numpy and pandas values as plain Python values for the spool."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, float) and value != value:
        return None
    return value
