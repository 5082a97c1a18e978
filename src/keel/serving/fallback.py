"""The fallback chain: what answers when the model cannot.

``FallbackBackend`` wraps any backend (or none, before a model is loaded). A model
exception, a missed deadline or a missing model sends each row down the chain configured
in keel.yaml; so does a row the serving policy keeps from the model (a validation
finding under ``fallback``, an unknown entity). The steps: ``cache`` (the last good answer
for this input or entity), ``rule`` (a function in the project or an expression), ``none``
(an explicit "no prediction" with the reason). The chain always ends in an answer: a
model failure is never a 500.

A rule answers in the model's own shape. It returns a label, or a mapping with the label
and the positive class's probability; its answers name the rule as their version::

    def churn_rule(row):                   # serving.rule: features:churn_rule
        risk = 0.6 if (row.get("tickets_30d") or 0) > 3 else 0.1
        return {"label": int(risk >= 0.5), "probability": risk}

    # -> {"prediction": 0, "label": 0, "probability": 0.1, "confidence": null,
    #     "model_version": "rule:features:churn_rule", "fallback": "rule", ...}
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.errors import ServingError
from keel.serving.backend import ModelBackend, Prediction
from keel.serving.cache import LastGood, canonical
from keel.serving.expressions import compile_expression

__all__ = ["FallbackBackend", "NamedRule", "load_rule", "rule_answer"]

logger = logging.getLogger("keel.serving")

Rule = Callable[[Mapping[str, Any]], Any]
_FUNCTION_REF = re.compile(r"^(?P<module>[A-Za-z_][\w./-]*):(?P<name>[A-Za-z_]\w*)$")


@dataclass(frozen=True)
class NamedRule:
    """A rule and the name its answers carry (``serving.rule`` as written)."""

    name: str
    function: Rule

    def __call__(self, row: Mapping[str, Any]) -> Any:
        return self.function(row)


def rule_answer(value: Any) -> tuple[Any, float | None]:
    """(label, probability) from what a rule returned: a label, or a mapping with
    ``label`` and optionally ``probability`` (a number from 0 to 1)."""
    if not isinstance(value, Mapping):
        return value, None
    if "label" not in value:
        raise ValueError("a rule's mapping needs a 'label'")
    probability = value.get("probability")
    if probability is not None:
        probability = float(probability)
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"a rule's probability must be from 0 to 1, not {probability}")
    return value["label"], probability


class FallbackBackend:
    """A backend that never fails: the model within its deadline, else the chain."""

    def __init__(
        self,
        inner: ModelBackend | None,
        steps: Sequence[str] = ("none",),
        *,
        deadline_ms: float = 50.0,
        rule: Rule | None = None,
        last_good: LastGood | None = None,
        entity: str | None = None,
    ) -> None:
        self.inner = inner
        self.version = inner.version if inner is not None else "none"
        self.steps = tuple(steps)
        self.deadline = deadline_ms / 1000
        self.rule = rule
        name = getattr(rule, "name", None) or getattr(rule, "__name__", "rule")
        self.rule_version = f"rule:{name}"
        self.last_good = last_good if last_good is not None else LastGood()
        self.entity = entity

    async def predict(self, batch: list[dict[str, Any]]) -> list[Prediction]:
        if self.inner is None:
            return [self.fall_back(row, "no model is loaded", "unloaded") for row in batch]
        try:
            async with asyncio.timeout(self.deadline):
                results = await self.inner.predict(batch)
        except TimeoutError:
            reason = f"the model did not answer within {self.deadline * 1000:g} ms"
            failure = "timeout"
        except Exception as error:
            logger.warning("model %s failed: %r", self.version, error)
            reason = f"the model failed ({type(error).__name__})"
            failure = "error"
        else:
            return [self._settled(row, result) for row, result in zip(batch, results, strict=True)]
        return [self.fall_back(row, reason, failure) for row in batch]

    def _settled(self, row: dict[str, Any], result: Prediction) -> Prediction:
        """The model's answer (remembered for the cache step), or the chain's for a row an
        inner backend declined."""
        if result.declined:
            answer = self.fall_back(row, result.reason or "declined", result.failure or "error")
            answer.features_missing = result.features_missing
            return answer
        if "cache" in self.steps and result.failure is None and not result.features_missing:
            self.last_good.remember(self._key(row), result)
        return result

    def fall_back(self, row: dict[str, Any], reason: str, failure: str = "error") -> Prediction:
        """The first answer the chain has for ``row``, marked with why the model did not
        answer (``error``, ``timeout`` or ``unloaded``): a canary's guards tell them apart."""
        answer = None
        for step in self.steps:
            answer = self._step(step, row, reason)
            if answer is not None:
                break
        if answer is None:
            answer = Prediction(prediction=None, fallback="none", reason=reason)
        answer.failure = failure
        return answer

    def _step(self, step: str, row: dict[str, Any], reason: str) -> Prediction | None:
        if step == "cache":
            found: Prediction | None = self.last_good.recall(self._key(row))
            if found is None:
                return None
            return Prediction(
                prediction=found.prediction,
                probability=found.probability,
                confidence=found.confidence,
                interval=found.interval,
                fallback="cache",
                reason=reason,
                model_version=found.model_version,
            )
        if step == "rule" and self.rule is not None:
            return self._rule(row, reason)
        if step == "none":
            return Prediction(prediction=None, fallback="none", reason=reason)
        return None

    def _rule(self, row: dict[str, Any], reason: str) -> Prediction | None:
        assert self.rule is not None
        try:
            label, probability = rule_answer(self.rule(row))
        except Exception as error:
            logger.warning("fallback rule failed: %r", error)
            return None
        return Prediction(
            prediction=label,
            probability=probability,
            fallback="rule",
            reason=reason,
            model_version=self.rule_version,
        )

    def _key(self, row: dict[str, Any]) -> Any:
        if self.entity is not None and row.get(self.entity) is not None:
            return ("entity", row[self.entity])
        return canonical(row)


def load_rule(text: str, root: Path) -> NamedRule:
    """``module:function`` (a file in the project) or an expression over the input."""
    match = _FUNCTION_REF.match(text.strip())
    if match is None:
        return NamedRule(text.strip(), compile_expression(text))
    module = match["module"].replace(".", "/").removesuffix("/py")
    path = root / f"{module}.py"
    if not path.is_file():
        raise ServingError(f"serving.rule names {path.name}, which is not in the project")
    spec = importlib.util.spec_from_file_location(f"keel_rule_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    function = getattr(loaded, match["name"], None)
    if not callable(function):
        raise ServingError(f"serving.rule: {path.name} has no function {match['name']}")
    return NamedRule(text.strip(), function)
