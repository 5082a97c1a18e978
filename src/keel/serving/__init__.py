"""Serving: the model server and its gateway.

``create_app(project)`` builds the ASGI app that serves the registry's production model
behind API keys with scopes, per-key rate limits, request validation compiled from the
model's input schema, a response cache, online features, micro-batching and a fallback
chain, and writes every answer to the prediction log before responding. ``keel serve``
runs it; ``keel keys create | list | revoke`` manage the keys.

Each instance of a request is answered on its own. Validation findings act per row as
``serving.validation`` says: ``reject`` gives the row ``errors`` in its own slot instead of
a prediction, ``flag`` lets the model answer and marks the row's ``findings``,
``fallback`` has the fallback chain answer it. The earlier ``ranges: ignore`` and
``unseen_categories: allow`` read as ``flag``. A request is 200 when any of its rows has an
answer (the other slots carry their errors) and 422 when every row was refused. Every
row, refused or answered, is in the prediction log with its findings; rows the policy kept
from the model are logged with ``route: policy``.

An answer is honest about what it rests on. A prediction made while the online store
could not serve some features lists them (``features_missing``, in the response and the
log). An entity no feature view has a row for (an unknown customer, or a store never
materialized) is not scored as if nothing were wrong: ``serving.unknown_entity`` sends it
down the fallback chain (``fallback``, the default), refuses it (``reject``: its slot
carries the error) or lets the model score it with the features missing (``serve``).

The fallback chain answers in the model's shape. A rule (``serving.rule``) returns a
label, or a mapping with the label and the positive class's probability, and its answer
names the rule as its version, never the model. In ``features.py``, with
``serving: {fallback: [rule, none], rule: features:churn_rule}``, and what it answers:

    def churn_rule(row):
        risk = 0.6 if (row.get("tickets_30d") or 0) > 3 else 0.1
        return {"label": int(risk >= 0.5), "probability": risk}

    {"prediction": 0, "label": 0, "probability": 0.1, "confidence": null,
     "model_version": "rule:features:churn_rule", "fallback": "rule",
     "reason": "the online store has no features for customer_id 'c_9999' (unknown, ...)"}

Everything on the predict path is a ``ModelBackend`` (``version`` and
``async predict(batch)``); ``MicroBatcher``, ``FallbackBackend`` and the feature lookup
wrap one and are one, so any object of that shape can be served.

``keel serve --workers N`` runs N worker processes under a supervisor. Each worker gets
SIGTERM, and so shuts down gracefully (flushing the prediction log), as soon as its
supervisor dies, even of SIGKILL: none is left holding the port (``keel.serving.orphan``).

The ``serving:`` section of keel.yaml (every key optional; defaults shown)::

    serving:
      rate_limit: 100/second          # per key; a key may carry its own
      rate_limit_url: null            # redis://... to share limits between replicas
      cache: null                     # {ttl: 60s, url: redis://..., max_entries: 100000}
      timeout_ms: 50                  # per-request deadline, then the fallback chain
      fallback: [none]                # any of cache, rule, none, in order
      rule: null                      # "features:churn_rule" or "1 if tickets_30d > 3 else 0"
      actions: []                     # [{when: "probability >= 0.7", say: "Call today"}]
      explain: false                  # explanations without asking (explain=true per call)
      entity: null                    # e.g. customer_id: passed through, keys the cache step
      unknown_entity: fallback        # or serve | reject: an entity no feature view knows
      max_body_kb: 1024               # 413 beyond
      max_instances: 1000             # 413 beyond
      body_timeout: 10s               # 408 for a client that sends its body too slowly
      header_timeout: 10s             # a connection's request headers, else it is closed
      keep_alive: 75s                 # idle connections are closed after this
      drain: 0s                       # after SIGTERM, /readyz is 503 this long, then exit
      batching: {max_batch: 64, max_wait_ms: 1}  # waits only while requests pour in
      validation:                     # per kind of finding: reject | flag | fallback
        types: reject                 # wrong type, null, missing field (reject | fallback)
        ranges: flag                  # outside the training range +- range_margin
        range_margin: 0.1
        unseen_categories: flag       # a category training never saw
        extra_fields: reject          # or ignore
      interval: 0.9                   # conformal coverage of regression intervals
      reload_interval: 500ms          # how often the registry is checked for a new model
      keys_refresh: 5s                # how soon a revoked key is refused
      proxy: null                     # {trusted: [10.0.0.0/8], headers: x-forwarded}: the
                                      # ingress whose forwarded https the dashboard believes
      metrics: null                   # {port: 9100, host: 0.0.0.0}: /metrics without a key
                                      # on that port (the main port's needs an admin key)
      log_predictions: true
      log_fsync: false                # true: fsync each append (survives power loss)
      log_roll: worker                # or server: roll spools into segments in-process
      log_seal_every: 10s
      log_format: text                # or json: JSON lines on stderr, each with its request_id
"""

from keel.serving.app import create_app
from keel.serving.asgi import KeelApp
from keel.serving.backend import ModelBackend, ModelThread, Prediction, SklearnBackend
from keel.serving.batching import MicroBatcher
from keel.serving.cache import LastGood, MemoryCache, RedisCache
from keel.serving.fallback import FallbackBackend, load_rule
from keel.serving.feedback import feedback_since, read_feedback, replace_feedback
from keel.serving.keys import SCOPES, ApiKey, KeyRing, KeyStore
from keel.serving.source import ModelSource, RegistrySource, conformal_halfwidth
from keel.serving.validation import ValidationPolicy, Validator, compile_validator

__all__ = [
    "SCOPES",
    "ApiKey",
    "FallbackBackend",
    "KeelApp",
    "KeyRing",
    "KeyStore",
    "LastGood",
    "MemoryCache",
    "MicroBatcher",
    "ModelBackend",
    "ModelSource",
    "ModelThread",
    "Prediction",
    "RedisCache",
    "RegistrySource",
    "SklearnBackend",
    "ValidationPolicy",
    "Validator",
    "compile_validator",
    "conformal_halfwidth",
    "create_app",
    "feedback_since",
    "load_rule",
    "read_feedback",
    "replace_feedback",
]
