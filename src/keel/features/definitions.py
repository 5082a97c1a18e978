"""Feature definitions: written once in a project's features.py, used offline and online.

Two kinds, both plain values:

- a ``FeatureView`` computes features per entity from a validated source, either by
  taking columns as they are (an attribute view, e.g. a customer's plan) or by
  aggregating events over trailing windows (``Aggregation``, e.g. spend over 30 days).
  Aggregations are evaluated on a fixed time grid (``every``): the value at grid time T
  uses only events strictly before T, so a training row never sees its own future and the
  online store holds exactly the row the offline join would pick.
- a request-time transform (``@request_transform``) computes a feature from the request
  payload plus looked-up features; the same function runs over training rows.

Every definition has a stable hash that goes into lineage.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import orjson

from keel.errors import FeatureError
from keel.schema import format_duration, parse_duration

__all__ = [
    "Aggregation",
    "FeatureSet",
    "FeatureView",
    "RequestTransform",
    "load_features",
    "request_transform",
]

AggregationFn = Literal["count", "sum", "mean", "min", "max"]
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED = {"entity_id", "feature_ts"}  # columns every stored view row has


def _duration(value: str | float | timedelta) -> timedelta:
    try:
        parsed = parse_duration(value)
    except ValueError as error:
        raise FeatureError(str(error)) from None
    if not isinstance(parsed, timedelta) or parsed <= timedelta(0):
        raise FeatureError(f"'{value}' is not a positive duration; write e.g. 30d or 12h")
    return parsed


def _check_name(kind: str, name: str) -> None:
    if not _NAME.match(name):
        raise FeatureError(f"{kind} name '{name}' must be a Python identifier")
    if name in _RESERVED or name.startswith("_keel"):
        raise FeatureError(f"{kind} name '{name}' is reserved by Keel; choose another")


@dataclass(frozen=True)
class Aggregation:
    """``fn`` of ``column`` over events in the trailing ``window``, optionally filtered.

    ``where`` is a SQL condition over the source's columns (e.g. ``kind = 'ticket'``).
    ``count`` and ``sum`` of no events are 0; ``mean``, ``min`` and ``max`` are null.
    """

    name: str
    fn: AggregationFn
    window: str | timedelta
    column: str | None = None
    where: str | None = None

    def __post_init__(self) -> None:
        _check_name("feature", self.name)
        if self.fn not in ("count", "sum", "mean", "min", "max"):
            raise FeatureError(f"aggregation '{self.name}': unknown fn '{self.fn}'")
        if self.fn != "count" and self.column is None:
            raise FeatureError(f"aggregation '{self.name}': {self.fn} needs a column")
        object.__setattr__(self, "window", _duration(self.window))

    @property
    def span(self) -> timedelta:
        assert isinstance(self.window, timedelta)
        return self.window

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fn": self.fn,
            "window": format_duration(self.span),
            "column": self.column,
            "where": self.where,
        }


@dataclass(frozen=True)
class FeatureView:
    """Features of one entity from one source, with a time-to-live.

    ``entity`` names the source's key column, or several for a composite key (e.g.
    ``("origin", "carrier")``); label and request rows carry the same columns.
    ``features`` is either column names (an attribute view: each row is the entity's
    state from its ``timestamp`` on) or ``Aggregation`` values (computed on the ``every``
    grid). A value older than ``ttl`` is stale and served as null with a flag.
    """

    name: str
    source: str
    entity: str | tuple[str, ...]
    timestamp: str
    features: tuple[str | Aggregation, ...]
    ttl: str | timedelta | None = None
    every: str | timedelta = "1d"

    def __post_init__(self) -> None:
        _check_name("feature view", self.name)
        object.__setattr__(self, "features", tuple(self.features))
        if not isinstance(self.entity, str):
            object.__setattr__(self, "entity", tuple(self.entity))
        if not self.keys or not all(isinstance(k, str) and k for k in self.keys):
            raise FeatureError(
                f"feature view '{self.name}': entity must name a key column or several"
            )
        if not self.features:
            raise FeatureError(f"feature view '{self.name}' has no features")
        for feature in self.features:
            if isinstance(feature, str):
                _check_name("feature", feature)
        kinds = {isinstance(f, Aggregation) for f in self.features}
        if len(kinds) > 1:
            raise FeatureError(
                f"feature view '{self.name}' mixes columns and aggregations; split it in two"
            )
        object.__setattr__(self, "every", _duration(self.every))
        if self.ttl is not None:
            object.__setattr__(self, "ttl", _duration(self.ttl))
        self._check_windows()

    def _check_windows(self) -> None:
        for agg in self.aggregations:
            if agg.span % self.step:
                raise FeatureError(
                    f"aggregation '{agg.name}': window {format_duration(agg.span)} is not a "
                    f"multiple of the view's grid step {format_duration(self.step)}"
                )

    @property
    def keys(self) -> tuple[str, ...]:
        """The key columns, one for a plain entity, several for a composite key."""
        return (self.entity,) if isinstance(self.entity, str) else tuple(self.entity)

    @property
    def aggregations(self) -> tuple[Aggregation, ...]:
        return tuple(f for f in self.features if isinstance(f, Aggregation))

    @property
    def is_aggregate(self) -> bool:
        return bool(self.aggregations)

    @property
    def step(self) -> timedelta:
        assert isinstance(self.every, timedelta)
        return self.every

    @property
    def max_age(self) -> timedelta | None:
        """How old a value may be and still be served: the TTL, or one grid step."""
        if isinstance(self.ttl, timedelta):
            return self.ttl
        return self.step if self.is_aggregate else None

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name if isinstance(f, Aggregation) else f for f in self.features)

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "entity": self.entity if isinstance(self.entity, str) else list(self.entity),
            "timestamp": self.timestamp,
            "features": [f.spec() if isinstance(f, Aggregation) else f for f in self.features],
            "ttl": format_duration(self.ttl) if isinstance(self.ttl, timedelta) else None,
            "every": format_duration(self.step),
        }

    @property
    def definition_hash(self) -> str:
        return _hash(self.spec())


@dataclass(frozen=True)
class RequestTransform:
    """A feature computed at request time from the payload and looked-up features."""

    name: str
    fn: Callable[[dict[str, Any]], Any]
    inputs: tuple[str, ...]

    @property
    def definition_hash(self) -> str:
        try:
            source = inspect.getsource(self.fn)
        except (OSError, TypeError):
            source = self.fn.__qualname__
        return _hash({"name": self.name, "inputs": list(self.inputs), "source": source})

    def __call__(self, row: dict[str, Any]) -> Any:
        return self.fn(row)


def request_transform(
    *inputs: str, name: str | None = None
) -> Callable[[Callable[[dict[str, Any]], Any]], RequestTransform]:
    """Decorator: ``@request_transform("monthly_charges", "spend_30d")`` on ``f(row)``."""

    def wrap(fn: Callable[[dict[str, Any]], Any]) -> RequestTransform:
        transform = RequestTransform(name or fn.__name__, fn, tuple(inputs))
        _check_name("transform", transform.name)
        return transform

    return wrap


@dataclass(frozen=True)
class FeatureSet:
    """Every view and transform a project defines, by name."""

    views: dict[str, FeatureView] = field(default_factory=dict)
    transforms: dict[str, RequestTransform] = field(default_factory=dict)

    @property
    def feature_names(self) -> tuple[str, ...]:
        names = [n for view in self.views.values() for n in view.feature_names]
        return (*names, *self.transforms)

    @property
    def definition_hash(self) -> str:
        parts = {n: v.definition_hash for n, v in sorted(self.views.items())}
        parts |= {n: t.definition_hash for n, t in sorted(self.transforms.items())}
        return _hash(parts)

    def view(self, name: str) -> FeatureView:
        if name not in self.views:
            known = ", ".join(sorted(self.views)) or "none"
            raise FeatureError(f"no feature view named '{name}' (defined: {known})")
        return self.views[name]

    def select(self, names: list[str] | None) -> FeatureSet:
        """The views and transforms named (all when ``names`` is empty)."""
        if not names:
            return self
        unknown = [n for n in names if n not in self.views and n not in self.transforms]
        if unknown:
            raise FeatureError(f"unknown feature views or transforms: {', '.join(unknown)}")
        return FeatureSet(
            {n: v for n, v in self.views.items() if n in names},
            {n: t for n, t in self.transforms.items() if n in names},
        )


def load_features(path: Path) -> FeatureSet:
    """Import a features.py and collect its module-level views and transforms."""
    module = _import(path)
    views: dict[str, FeatureView] = {}
    transforms: dict[str, RequestTransform] = {}
    for value in vars(module).values():
        if isinstance(value, FeatureView):
            _add(views, value.name, value, path)
        elif isinstance(value, RequestTransform):
            _add(transforms, value.name, value, path)
    clash = set(views) & set(transforms)
    if clash:
        raise FeatureError(f"{path}: '{sorted(clash)[0]}' is both a view and a transform")
    return FeatureSet(views, transforms)


def _add(into: dict[str, Any], name: str, value: Any, path: Path) -> None:
    if name in into and into[name] is not value:
        raise FeatureError(f"{path}: two definitions are named '{name}'; rename one")
    into[name] = value


def _import(path: Path) -> Any:
    if not path.is_file():
        raise FeatureError(f"{path} does not exist; create it or fix features.module")
    name = f"keel_project_features_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FeatureError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except FeatureError as error:
        raise FeatureError(f"{path}: {error}") from None
    except Exception as error:
        sys.modules.pop(name, None)
        raise FeatureError(f"{path} failed to import: {type(error).__name__}: {error}") from None
    return module


def _hash(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()
