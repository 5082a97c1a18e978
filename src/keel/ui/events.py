"""The one-off events Keel raises as alerts, as the runbook explains them to on-call.

Every event Keel raises through ``AlertBook.event`` is listed here once, with its
severity; tests/ui/test_runbook.py fails when the source raises one that is not.
"""

from __future__ import annotations

from dataclasses import dataclass

from keel.ui.anchors import RESPONSE, alias, runbook_anchor

__all__ = ["EVENTS", "Event"]


@dataclass(frozen=True)
class Event:
    """A one-off event Keel raises as an already resolved alert, as on-call reads it.

    ``fires`` completes "Fires when ..."; a ``mitigate`` step may say ``{rollback}``, which
    ``build_runbook`` fills in with how to roll back this project.
    """

    name: str
    severity: str
    fires: str
    details: str
    diagnose: tuple[str, ...]
    mitigate: tuple[str, ...]

    @property
    def anchor(self) -> str:
        return runbook_anchor(self.name)

    @property
    def alias(self) -> str | None:
        """The event's own name, the anchor its alerts link to, when it is not the slug."""
        return alias(self.name, self.anchor)

    @property
    def response(self) -> str:
        return RESPONSE.get(self.severity, "")


EVENTS = (
    Event(
        "retrain",
        "info",
        "the retrain trigger (`monitoring.retrain`, checked by each `keel worker` or "
        "`keel monitor` cycle) ran training; the summary says why and ends in the outcome: "
        "trained, passed the gate, failed the gate, or failed.",
        "`version` and `gate_passed` of the new version, or `error` when the run failed.",
        (
            "keel alerts list --status resolved --json",
            "keel registry show latest",
            "keel registry diff production latest",
            "keel data runs",
        ),
        (
            "Passed the gate: nothing to do. With `rollout.auto` the worker sends it to shadow "
            "on its next step (`keel shadow` follows it); otherwise stage it yourself with "
            "`keel deploy VERSION --shadow`.",
            "Failed the gate: production keeps serving. `keel registry show VERSION` names the "
            "check that failed; fix the data or the training config rather than forcing it.",
            "Failed: the `error` detail says why, and `keel train` run by hand shows the whole "
            "traceback. The trigger waits `monitoring.retrain.cooldown` before trying again.",
        ),
    ),
    Event(
        "shadow_promoted",
        "info",
        "the shadow answered enough requests in agreement with production (or at parity, for "
        "a regressor) with few left unanswered, and the worker made it the canary at the "
        "first `rollout.canary.steps` share.",
        "`version`.",
        ("keel status", "keel deployments", "keel registry show VERSION"),
        (
            "Nothing to do: the canary moves on step by step only while its guards hold, and "
            "a bad one is rolled back on its own (`canary_rolled_back`).",
            "Follow it with `keel status` (its share and state) and `keel deployments`.",
        ),
    ),
    Event(
        "shadow_rejected",
        "warning",
        "the shadow answered enough requests and still fell short of `rollout.shadow` (too "
        "little agreement or parity with production, or too many requests left unanswered); "
        "the worker archived it.",
        "`version` and the shadow's `report`: requests, unanswered, agreement or mean "
        "difference, latency, accuracy on labelled requests.",
        (
            "keel alerts list --status resolved --json",
            "keel deployments",
            "keel registry show VERSION",
            "keel registry diff production VERSION",
        ),
        (
            "Production was never affected: a shadow answers no one, so there is nothing to "
            "roll back.",
            "Many unanswered requests: the shadow failed or was too slow; the log of "
            "`keel serve` says why for each.",
            "Low agreement or parity: the candidate predicts differently from production; "
            "`keel registry diff production VERSION` shows how its data and config differ. Fix "
            "the cause, `keel train` a new version and stage it with "
            "`keel deploy VERSION --shadow`.",
        ),
    ),
    Event(
        "canary_promoted",
        "info",
        "the canary went through every `rollout.canary.steps` share with its guards holding, "
        "and the worker made it the production model.",
        "`version`.",
        ("keel status", "keel deployments", "keel registry show production"),
        (
            "Nothing to do: monitoring watches the new production model as it did the last.",
            "If it misbehaves after all, roll back: {rollback}",
        ),
    ),
    Event(
        "canary_rolled_back",
        "critical",
        "a canary guard tripped (error or fallback rate, p99 latency, constant predictions, "
        "predictions moved from production's, or a realised metric below production's on "
        "`keel feedback` labels) and the worker archived the canary.",
        "`version` and `breaches`, the guards that tripped (empty when a later worker step "
        "finished an interrupted rollback; `keel deployments` still has the reason).",
        (
            "keel status",
            "keel deployments",
            "keel alerts list --status resolved --json",
            "keel registry show VERSION",
            "keel registry diff production VERSION",
        ),
        (
            "Production kept serving the previous model: every replica stops sending traffic "
            "to the archived canary within seconds. Check `keel status` names the production "
            "version you expect; there is nothing to roll back.",
            "Find why: `breaches` and the reason in `keel deployments` name the guard. Error "
            "rate: the model raised, and the log of `keel serve` says what; fallback rate "
            "without errors: the model timed out (`serving.timeout_ms`), as does p99 "
            "latency: the candidate's size or features; "
            "constant or moved predictions: a broken feature or pipeline; a metric drop: the "
            "candidate is worse on real labels.",
            "Fix the candidate (data, features or training config), train a new version with "
            "`keel train` and stage it with `keel deploy VERSION --shadow`: an archived "
            "version never comes back on its own.",
        ),
    ),
    Event(
        "model_load_failed",
        "critical",
        "a model server could not load or warm up the production version: its artifact is "
        "missing or fails its digest check, it does not unpickle, or its warm-up prediction "
        "fails.",
        "`ref` (the version), `error` and `at`.",
        (
            "keel status",
            "keel registry show production",
            "keel deployments",
            "keel alerts list --status open --json",
        ),
        (
            "A server that was serving a model keeps serving it (`GET /v1/status` shows "
            "`last_load_error`); one that had none yet is not ready (`GET /readyz` answers "
            "503) and serves the newest earlier production version that loads, its answers "
            'marked `fallback: "previous"`, else the fallback chain (`fallback: "rule"`, or '
            "503 without a rule). Each tries the version again a minute later; the alert "
            "stays open until a version loads.",
            "The `error` says why: a missing artifact or a failed digest check points at the "
            "artifact store; an unpickling error at library versions that differ between "
            "training and serving; a failed warm-up at a model that cannot predict its own "
            "schema.",
            "To serve a model that loads, roll back: {rollback}",
        ),
    ),
)
