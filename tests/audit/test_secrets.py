"""Credentials in code: keys, private keys, passwords in URLs and in assignments."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import found

# Split so this file itself holds no key that a scanner would flag.
AWS_KEY_ID = "AKIA" + "IOSFODNN7EXAMPLE"
GITHUB_TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
SLACK_TOKEN = "xoxb-" + "1234567890-abcdefghij"

HITS = {
    "aws key id": f'client = make_client("{AWS_KEY_ID}")\n',
    "github token": f'HEADERS = {{"Authorization": "token {GITHUB_TOKEN}"}}\n',
    "slack token": f'notify("{SLACK_TOKEN}", "done")\n',
    "private key": 'KEY = """-----BEGIN RSA PRIVATE KEY-----\nMIIE\n"""\n',
    "url password": 'DB = "postgresql://admin:hunter22@db.internal:5432/prod"\n',
    "assigned password": 'password = "s3cr3t-pass"\n',
    "attribute token": 'settings.api_token = "ghp_abcdef123456"\n',
    "keyword secret": 'connect(host="db", password="s3cr3t-pass")\n',
    "dict entry": 'config = {"aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG"}\n',
    "environ set": 'os.environ["API_KEY"] = "abc123def456"\n',
}
CLEAN = {
    "from environment": 'import os\npassword = os.environ["DB_PASSWORD"]\n',
    "env var name": 'TOKEN_VARIABLE = "SERVICE_TOKEN"\n',
    "placeholder": 'password = "<your password>"\n',
    "template": 'DB = "postgresql://admin:${DB_PASSWORD}@db/prod"\n',
    "empty": 'password = ""\n',
    "no password in url": 'DB = "postgresql://admin@db.internal/prod"\n',
    "unrelated name": 'max_tokens = "512000"\ntokenizer = "bert-base-uncased"\n',
}


@pytest.mark.parametrize("code", HITS.values(), ids=list(HITS))
def test_credentials_are_found(tmp_path: Path, code: str) -> None:
    """Each way of writing a secret into code is reported once, high severity."""
    [hit] = found(tmp_path, {"app.py": code}, "credential")
    assert hit.severity.value == "high"


@pytest.mark.parametrize("code", CLEAN.values(), ids=list(CLEAN))
def test_secrets_kept_out_of_code_are_not_flagged(tmp_path: Path, code: str) -> None:
    """Secrets read from the environment, placeholders and look-alikes are fine."""
    assert found(tmp_path, {"app.py": code}, "credential") == []


@pytest.mark.parametrize(
    ("line", "flagged"),
    [
        ("--extra-index-url https://ci:s3cretTok@pypi.internal/simple", True),
        ("--extra-index-url https://ci:${PIP_TOKEN}@pypi.internal/simple", False),
    ],
)
def test_a_token_in_a_requirements_index_url_is_found(
    tmp_path: Path, line: str, flagged: bool
) -> None:
    """A password in a package index URL is a credential in the repository too."""
    hits = found(tmp_path, {"requirements.txt": f"pandas==2.2.2\n{line}\n"}, "credential")
    assert [(h.file, h.line) for h in hits] == ([("requirements.txt", 2)] if flagged else [])


def test_the_message_does_not_repeat_the_secret(tmp_path: Path) -> None:
    """The report can be pasted into a ticket without leaking the password."""
    [hit] = found(tmp_path, {"app.py": HITS["url password"]}, "credential")
    assert "hunter22" not in hit.message + hit.fix
