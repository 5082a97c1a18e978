"""``keel keys`` and ``keel serve`` as users meet them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from keel.cli.main import app
from keel.project import Project
from keel.serving import KeyRing, KeyStore


def keys(project_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["keys", *args, "--project", str(project_dir)])
    return result.exit_code, result.output


def test_create_prints_a_key_that_the_server_accepts(project_dir: Path) -> None:
    """keys create --json shows the key once; a key ring built from the store accepts it."""
    code, output = keys(project_dir, "create", "--name", "app", "--scope", "predict", "--json")
    created = json.loads(output)
    with Project.open(project_dir) as project:
        ring = KeyRing(KeyStore(project.store).list())
    assert code == 0 and ring.check(created["key"]) is not None


def test_list_shows_keys_without_secrets(project_dir: Path) -> None:
    """keys list --json names the keys and their scopes but never a secret or hash."""
    _, output = keys(project_dir, "create", "--name", "app", "--scope", "admin", "--json")
    secret = json.loads(output)["key"]
    code, listing = keys(project_dir, "list", "--json")
    assert code == 0 and json.loads(listing)[0]["scopes"] == ["admin"]
    assert secret not in listing and "sha256" not in listing


def test_revoke_by_name_marks_the_key_revoked(project_dir: Path) -> None:
    """keys revoke NAME sets revoked_at, shown by keys list."""
    keys(project_dir, "create", "--name", "app", "--scope", "predict")
    code, _ = keys(project_dir, "revoke", "app", "--json")
    _, listing = keys(project_dir, "list", "--json")
    assert code == 0 and json.loads(listing)[0]["revoked_at"] is not None


def test_a_bad_scope_is_one_sentence(project_dir: Path) -> None:
    """An unknown scope fails with a KeelError naming the valid scopes."""
    result = CliRunner().invoke(
        app, ["keys", "create", "--name", "x", "--scope", "root", "--project", str(project_dir)]
    )
    assert result.exit_code == 1 and "predict, feedback, viewer, admin" in str(result.exception)


def test_rotate_ui_secret_keeps_the_previous_one_for_a_session_lifetime(
    project_dir: Path,
) -> None:
    """rotate-ui-secret --json makes generation 2 current and says generation 1 is accepted
    for 12 hours after the rotation."""
    code, output = keys(project_dir, "rotate-ui-secret", "--json")
    first = json.loads(output)
    code, output = keys(project_dir, "rotate-ui-secret", "--json")
    second = json.loads(output)
    assert code == 0 and first["previous"] is None
    assert (second["generation"], second["previous"]) == (2, 1)
    assert second["previous_accepted_until"] == second["rotated_at"] + 12 * 3600


def test_serve_has_help_with_host_port_and_workers() -> None:
    """keel serve --help documents --host, --port and --workers."""
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    assert all(option in result.output for option in ("--host", "--port", "--workers"))


def test_serve_refuses_a_bad_rule_in_one_sentence(project_dir: Path) -> None:
    """A serving.rule naming a missing file stops `keel serve` before any worker starts."""
    (project_dir / "keel.yaml").write_text("name: t\nserving: {rule: 'nowhere:rule'}\n")
    result = CliRunner().invoke(app, ["serve", "--project", str(project_dir)])
    assert result.exit_code == 1 and "nowhere.py" in str(result.exception)
