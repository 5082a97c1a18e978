"""keel.yaml loading: valid files, and every kind of bad file a user writes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from keel.config import load_config, mask_url, parse_config
from keel.errors import ConfigError
from keel.schema import format_duration, parse_duration

FULL = """\
name: churn
store: sqlite:///.keel/keel.db
sources:
  customers:
    kind: csv
    path: data/customers.csv
    key: customer_id
serving:
  rate_limit: 100/second
  cache: {ttl: 60s}
monitoring:
  window: 1h
  retrain: {on: [drift], cooldown: 1d}
"""


def _parse(text: str, tmp_path: Path) -> object:
    return parse_config(text, tmp_path / "keel.yaml")


def test_every_section_is_optional(tmp_path: Path) -> None:
    """An empty file is a valid project with defaults."""
    loaded = parse_config("", tmp_path / "keel.yaml")
    assert loaded.config.name == "keel-project"
    assert loaded.config.sources == {}


def test_full_config_parses_with_durations(tmp_path: Path) -> None:
    """Sections and duration strings become typed values."""
    loaded = parse_config(FULL, tmp_path / "keel.yaml")
    assert loaded.config.serving is not None and loaded.config.serving.cache is not None
    assert loaded.config.serving.cache.ttl == timedelta(seconds=60)
    assert loaded.config.monitoring is not None
    assert loaded.config.monitoring.retrain.cooldown == timedelta(days=1)


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    """A YAML syntax error points at the file, line and column where the problem starts."""
    with pytest.raises(ConfigError, match=r"keel.yaml:3:6: malformed YAML, the list opened here"):
        _parse("name: a\nsources:\n  x: [unclosed\n", tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nmae: x\n", r"keel.yaml:1:1: nmae: unknown key; did you mean 'name'\?"),
        (
            "sources:\n  c:\n    kind: csv\n    pth: a.csv\n",
            r"keel.yaml:4:5: sources.c.pth: unknown key; did you mean 'path'\?",
        ),
        (
            "serving:\n  cache: {ttl: 5s, tll: 3}\n",
            r"keel.yaml:2:20: serving.cache.tll: unknown key; did you mean 'ttl'\?",
        ),
        ("zzzzzz: 1\n", r"zzzzzz: unknown key; expected one of: name, store"),
        (
            "monitoring:\n  drift:\n    min_effect: {kss: 0.1}\n",
            r"keel.yaml:3:18: monitoring.drift.min_effect.kss: unknown key; did you mean 'ks'\?",
        ),
    ],
)
def test_unknown_key_suggests_the_likely_fix(tmp_path: Path, text: str, message: str) -> None:
    """A typo'd key is refused with its line, column and the closest real key."""
    with pytest.raises(ConfigError, match=message):
        _parse(text, tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "serving:\n  timeout_ms: fast\n",
            r"keel.yaml:2:15: serving.timeout_ms: expected a number like 50, not 'fast'$",
        ),
        (
            "sources:\n  c:\n    kind: parqet\n",
            r"keel.yaml:3:11: sources.c.kind: expected one of 'csv', 'parquet', 'sql' or "
            r"'python', not 'parqet'; did you mean 'parquet'\?",
        ),
        ("serving:\n  cache: {ttl: soon}\n", r"keel.yaml:2:16: .*'soon' is not a duration"),
        (
            "sources:\n  c: {path: a.csv}\n",
            r"keel.yaml:2:6: sources.c.kind: required but missing; add e.g. kind: csv$",
        ),
        (
            "sources: [a, b]\n",
            r"keel.yaml:1:10: sources: expected a mapping like \{NAME: \{kind: csv, .*\}\}, "
            r"not \[a, b\]$",
        ),
        (
            "gate:\n  vs_production:\n    roc_auc: 0.02\n",
            r"keel.yaml:3:14: gate.vs_production.roc_auc: expected a mapping like "
            r"\{max_drop: 0.02\}, not 0.02$",
        ),
        (
            "sources:\n  c: {kind: csv, path: a, key: 5}\n",
            r"sources.c.key: expected text like customer_id, or a list like \[carrier, flight, "
            r"date\], not 5$",
        ),
        (
            "monitoring:\n  window: [1]\n",
            r"keel.yaml:2:11: monitoring.window: expected a duration like 30s, 10m or 1h, or a "
            r"mapping like \{rows: 10000\}, not \[1\]$",
        ),
        (
            "sources:\n  c:\n    kind: csv\n    path: a\n    checks:\n      columns:\n"
            "        age: {range: [1]}\n",
            r"keel.yaml:7:22: sources.c.checks.columns.age.range: expected a pair like \[0, 120\]",
        ),
        (
            "training:\n  features: [age, {plan: 1}]\n",
            r"keel.yaml:2:19: training.features\[1\]: expected text, not \{plan: 1\}$",
        ),
        (
            "serving:\n  batching: {max_batch: 0}\n",
            r"keel.yaml:2:25: serving.batching.max_batch: must be at least 1, not 0$",
        ),
    ],
)
def test_wrong_types_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    """A wrong value is refused with its place, dotted key and the shape it should have."""
    with pytest.raises(ConfigError, match=message):
        _parse(text, tmp_path)


def test_all_problems_are_reported_in_line_order(tmp_path: Path) -> None:
    """Several mistakes are listed together, first line first."""
    with pytest.raises(ConfigError) as caught:
        _parse("nmae: x\nserving:\n  timeout_ms: fast\n", tmp_path)
    lines = str(caught.value).splitlines()
    assert [line.split(":")[1] for line in lines] == ["1", "3"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("? [a, b]\n: 1\n", r"keel.yaml:1:3: a key must be a name, not a list or mapping$"),
        (
            "sources:\n  2024: {kind: csv, path: a.csv}\n",
            r"keel.yaml:2:3: sources: the key 2024 is a name, so quote it: '2024'$",
        ),
    ],
)
def test_keys_that_are_not_names_are_refused(tmp_path: Path, text: str, message: str) -> None:
    """A list as a key, or a number where a name goes, is one sentence at the key."""
    with pytest.raises(ConfigError, match=message):
        _parse(text, tmp_path)


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    """YAML silently keeps the last duplicate; Keel refuses it."""
    with pytest.raises(ConfigError, match=r"keel.yaml:2:1: key 'name' appears twice"):
        _parse("name: a\nname: b\n", tmp_path)


def test_non_mapping_file_is_refused(tmp_path: Path) -> None:
    """A file that is a list or a scalar is not a config."""
    with pytest.raises(ConfigError, match="must be a mapping"):
        _parse("- a\n- b\n", tmp_path)


def test_missing_file_suggests_init(tmp_path: Path) -> None:
    """Loading a keel.yaml that is not there says how to create one."""
    with pytest.raises(ConfigError, match="keel init"):
        load_config(tmp_path / "keel.yaml")


def test_env_interpolation_and_masking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """${VAR} is replaced in the config and masked in the resolved view."""
    monkeypatch.setenv("DB_PASSWORD", "hunter2")
    loaded = parse_config(
        "store: postgresql://keel:${DB_PASSWORD}@db/keel\n", tmp_path / "keel.yaml"
    )
    assert loaded.config.store == "postgresql://keel:hunter2@db/keel"
    resolved = loaded.resolved()
    assert resolved["store"] == "postgresql://keel:****@db/keel"
    assert "hunter2" not in str(resolved)


def test_literal_password_in_url_is_masked(tmp_path: Path) -> None:
    """A password written straight into a URL is hidden in the resolved view too."""
    loaded = parse_config("store: postgresql://keel:plain@db/keel\n", tmp_path / "keel.yaml")
    assert loaded.resolved()["store"] == "postgresql://keel:****@db/keel"


def test_unset_env_var_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reference to an unset variable says which one, its line and its column."""
    monkeypatch.delenv("KEEL_NOT_SET", raising=False)
    with pytest.raises(
        ConfigError, match=r"keel.yaml:2:30: alerts.sinks\[0\].url: uses \$\{KEEL_NOT_SET\}"
    ):
        _parse("alerts:\n  sinks: [{kind: slack, url: '${KEEL_NOT_SET}'}]\n", tmp_path)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("features:\n  module: nope.py\n", "features.module"),
        ("training:\n  labels: data/nope.csv\n", "training.labels"),
        ("gate:\n  hard_examples: {file: hard.csv}\n", "gate.hard_examples.file"),
    ],
)
def test_missing_referenced_files_are_errors(tmp_path: Path, text: str, key: str) -> None:
    """A file the config names must exist, relative to the project."""
    with pytest.raises(ConfigError, match=rf"{key}: refers to '.*', which does not exist"):
        _parse(text, tmp_path)


def test_unmatched_source_glob_is_a_warning(tmp_path: Path) -> None:
    """Data may arrive later: an empty source glob warns, it does not fail."""
    loaded = parse_config("sources:\n  e: {kind: csv, path: 'in/*.csv'}\n", tmp_path / "keel.yaml")
    assert loaded.warnings == ("source 'e': nothing matches in/*.csv yet",)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("10m", 600),
        ("1h", 3600),
        ("2d", 172800),
        ("1w", 604800),
        ("250ms", 0.25),
        (5, 5),
    ],
)
def test_durations(text: str | int, seconds: float) -> None:
    """Durations accept a number and a unit, or plain seconds."""
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("seconds", [0.25, 90, 600, 86400 * 3])
def test_duration_round_trip(seconds: float) -> None:
    """Formatting a duration gives text that parses back to it."""
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


def test_mask_url_leaves_urls_without_passwords() -> None:
    """Only a password is masked; the rest of the URL stays readable."""
    assert mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert mask_url("s3://u:p@bucket/x") == "s3://u:****@bucket/x"


def test_yaml_1_1_booleans_stay_strings(tmp_path: Path) -> None:
    """``on:`` is a key and ``no`` a word: only true/false are booleans."""
    loaded = parse_config("monitoring:\n  retrain: {on: [drift]}\n", tmp_path / "keel.yaml")
    assert loaded.config.monitoring is not None
    assert loaded.config.monitoring.retrain.on == ["drift"]
    assert parse_config("name: no\n", tmp_path / "keel.yaml").config.name == "no"


def test_a_later_error_gains_the_place_of_its_key(tmp_path: Path) -> None:
    """A ConfigError raised after loading that names a key the file writes is given that
    key's file, line and column, with its sentence and hint."""
    text = "name: p\nmonitoring:\n  drift:\n    alpha: 0.01\n"
    loaded = parse_config(text, tmp_path / "keel.yaml")
    later = ConfigError("is too strict here", key="monitoring.drift.alpha", hint="raise it")
    [problem] = loaded.locate(later).problems
    line = text.splitlines().index("    alpha: 0.01") + 1
    assert (problem.line, problem.column) == (line, len("    ") + 1)
    assert (problem.path, problem.message, problem.hint) == (
        "monitoring.drift.alpha",
        "is too strict here",
        "raise it",
    )
    assert str(loaded.locate(later)) == (
        f"{tmp_path / 'keel.yaml'}:{line}:5: monitoring.drift.alpha: is too strict here; raise it"
    )


def test_a_later_error_about_an_unwritten_key_keeps_its_sentence(tmp_path: Path) -> None:
    """A key the file does not write (a default was at fault) has no place to name: the
    error stays as it was raised."""
    loaded = parse_config("name: p\n", tmp_path / "keel.yaml")
    later = ConfigError("names unknown metrics x", key="training.metrics")
    with pytest.raises(ConfigError) as caught, loaded.locating():
        raise later
    assert caught.value is later and str(later) == "training.metrics: names unknown metrics x"
