"""Every dashboard page over real HTTP: who may see it, what it shows, and empty states."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from keel.ui.events import EVENTS
from tests.ui.conftest import Empty, serving, sign_in
from tests.ui.demo import Demo

PAGES = [
    "/ui/",
    "/ui/registry",
    "/ui/registry/2",
    "/ui/registry/diff?a=1&b=2",
    "/ui/deployments",
    "/ui/drift",
    "/ui/performance",
    "/ui/alerts",
    "/ui/data",
    "/ui/runbook",
]
Client = Callable[[str], httpx.Client]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_for_a_viewer(signed_in: Client, demo: Demo, path: str) -> None:
    """A key with any scope sees every page, with the signed-in name in the header."""
    response = signed_in(demo.viewer_key).get(path)
    assert response.status_code == 200
    assert "analyst (view only)" in response.text


@pytest.mark.parametrize("path", [*PAGES, "/ui/deployments/rollback", "/ui/data/runs/abcd"])
def test_pages_without_a_session_send_to_login(base_url: str, path: str) -> None:
    """Without a session cookie every page redirects to the login form, keeping the target."""
    response = httpx.get(base_url + path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/ui/login?next=")


@pytest.mark.parametrize("cookie", ["", "garbage", "eyJrIjogIngifQ.00", "a.b.c"])
def test_forged_cookies_are_refused(base_url: str, cookie: str) -> None:
    """A cookie that is not signed with the project's secret is no session."""
    response = httpx.get(
        base_url + "/ui/alerts", cookies={"keel_session": cookie}, follow_redirects=False
    )
    assert response.status_code == 303


@pytest.mark.parametrize("key", ["", "not-a-key", "keel_0123456789ab_wrongsecret"])
def test_wrong_keys_cannot_sign_in(base_url: str, key: str) -> None:
    """The login form refuses a missing, malformed or unknown key and sets no cookie."""
    response = httpx.post(base_url + "/ui/login", data={"api_key": key, "next": "/ui/"})
    assert response.status_code == 401
    assert "keel_session" not in response.headers.get("set-cookie", "")


ACTIONS = ["/ui/alerts/{id}/ack", "/ui/alerts/{id}/resolve", "/ui/deployments/rollback"]


@pytest.mark.parametrize("path", ACTIONS)
def test_actions_without_a_session_are_refused(base_url: str, demo: Demo, path: str) -> None:
    """A form posted without a session is refused with 401."""
    url = base_url + path.format(id=demo.alert_id)
    assert httpx.post(url, data={"csrf": "x"}).status_code == 401


@pytest.mark.parametrize("path", ACTIONS)
def test_actions_without_the_csrf_token_are_refused(
    signed_in: Client, demo: Demo, path: str
) -> None:
    """An admin's session alone is not enough: the form must carry its CSRF token."""
    client = signed_in(demo.admin_key)
    response = client.post(path.format(id=demo.alert_id), data={"csrf": "forged"})
    assert response.status_code == 403
    assert "stale or forged" in response.text


@pytest.mark.parametrize("path", ACTIONS)
def test_actions_from_another_site_are_refused(signed_in: Client, demo: Demo, path: str) -> None:
    """A form whose Origin is another site is refused even with a valid token."""
    client = signed_in(demo.admin_key)
    token = _csrf(client.get("/ui/alerts").text)
    response = client.post(
        path.format(id=demo.alert_id),
        data={"csrf": token},
        headers={"origin": "https://evil.example"},
    )
    assert response.status_code == 403


@pytest.mark.parametrize("path", ACTIONS)
def test_view_only_keys_cannot_act(signed_in: Client, demo: Demo, path: str) -> None:
    """A key without the admin scope is refused every action, even with a valid token."""
    client = signed_in(demo.viewer_key)
    token = _csrf(client.get("/ui/alerts").text)
    response = client.post(path.format(id=demo.alert_id), data={"csrf": token})
    assert response.status_code == 403
    assert "admin scope" in response.text


def test_view_only_keys_see_no_action_buttons(signed_in: Client, demo: Demo) -> None:
    """The alerts page offers acknowledge and resolve to admin keys only."""
    assert "Acknowledge" not in signed_in(demo.viewer_key).get("/ui/alerts").text
    assert "Acknowledge" in signed_in(demo.admin_key).get("/ui/alerts").text


def test_rollback_confirmation_is_for_admins_only(signed_in: Client, demo: Demo) -> None:
    """The rollback confirmation page is refused to view-only keys."""
    assert signed_in(demo.viewer_key).get("/ui/deployments/rollback").status_code == 403
    page = signed_in(demo.admin_key).get("/ui/deployments/rollback")
    assert page.status_code == 200 and "Yes, roll back to version 1" in page.text


def test_unknown_version_is_a_404_page(signed_in: Client, demo: Demo) -> None:
    """A version that does not exist is a clear not-found page, not a traceback."""
    response = signed_in(demo.viewer_key).get("/ui/registry/999")
    assert response.status_code == 404
    assert "does not exist" in response.text


def test_diff_needs_two_numbers(signed_in: Client, demo: Demo) -> None:
    """A diff without two version numbers says how to ask for one."""
    response = signed_in(demo.viewer_key).get("/ui/registry/diff?a=1")
    assert response.status_code == 400
    assert "two version numbers" in response.text


def test_login_never_redirects_off_site(base_url: str, demo: Demo) -> None:
    """A crafted next= pointing elsewhere lands on the overview instead."""
    response = httpx.post(
        base_url + "/ui/login",
        data={"api_key": demo.viewer_key, "next": "//evil.example/ui/"},
    )
    assert response.headers["location"] == "/ui/"


def test_session_cookie_is_httponly_and_strict(base_url: str, demo: Demo) -> None:
    """The session cookie cannot be read by scripts nor sent by other sites."""
    response = httpx.post(base_url + "/ui/login", data={"api_key": demo.viewer_key, "next": ""})
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie


def test_pages_forbid_scripts_and_framing(signed_in: Client, demo: Demo) -> None:
    """Pages are sent with a CSP that allows no script and no framing."""
    headers = signed_in(demo.viewer_key).get("/ui/").headers
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "script-src" not in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"


def test_overview_shows_what_runs_and_how_it_does(signed_in: Client, demo: Demo) -> None:
    """The overview names the production version, the open alert and last hour's traffic."""
    text = signed_in(demo.viewer_key).get("/ui/").text
    assert "version 2" in text
    assert "auc_drop" in text
    assert re.search(r"Requests</th><td>\d+ \(", text)


def test_drift_page_shows_the_shifted_feature(signed_in: Client, demo: Demo) -> None:
    """The demo's shifted input ``x`` is reported as drifted, with its histogram."""
    text = signed_in(demo.viewer_key).get("/ui/drift").text
    assert re.search(r"<td><a href=\"#col-\d+\">x</a></td><td><span class=\"decision drift\"", text)
    assert text.count("<svg") >= 3


def test_alerts_link_to_their_runbook_entry(signed_in: Client, demo: Demo) -> None:
    """Each alert links to its rule's anchor, and the runbook page has that anchor."""
    client = signed_in(demo.viewer_key)
    assert 'href="/ui/runbook#auc-drop"' in client.get("/ui/alerts").text
    assert 'id="auc-drop"' in client.get("/ui/runbook").text


def test_runbook_page_has_every_event_under_both_anchors(signed_in: Client, demo: Demo) -> None:
    """Event alerts link runbook#<name>: the dashboard's runbook answers that and the slug,
    and lists each event in its contents."""
    text = signed_in(demo.viewer_key).get("/ui/runbook").text
    assert 'id="canary_rolled_back"' in text and 'id="canary-rolled-back"' in text
    for event in EVENTS:
        assert f'id="{event.name}"' in text and f'id="{event.anchor}"' in text
        assert f'<a href="#{event.anchor}">{event.name}</a>' in text


def test_data_page_links_the_validation_report(signed_in: Client, demo: Demo) -> None:
    """The ingestion run is listed and its validation report opens."""
    client = signed_in(demo.viewer_key)
    link = re.search(r'href="(/ui/data/runs/[^"]+)"', client.get("/ui/data").text)
    assert link is not None
    report = client.get(link.group(1))
    assert report.status_code == 200 and "Validation report: passed" in report.text


def test_logout_ends_the_session(base_url: str, demo: Demo) -> None:
    """Signing out clears the cookie: the next page asks to sign in again."""
    with sign_in(base_url, demo.viewer_key) as client:
        token = _csrf(client.get("/ui/").text)
        assert client.post("/ui/logout", data={"csrf": token}).status_code == 303
        assert client.get("/ui/").status_code == 303


def test_acknowledge_records_who(fresh_demo: Demo) -> None:
    """An admin's acknowledgement marks the alert with the key's name."""
    with serving(fresh_demo.root) as base, sign_in(base, fresh_demo.admin_key) as client:
        token = _csrf(client.get("/ui/alerts").text)
        response = client.post(f"/ui/alerts/{fresh_demo.alert_id}/ack", data={"csrf": token})
        assert response.status_code == 303
        assert "acknowledged by ui:ops-admin" in client.get(response.headers["location"]).text


def test_resolve_moves_the_alert_to_resolved(fresh_demo: Demo) -> None:
    """Resolving empties the open list."""
    with serving(fresh_demo.root) as base, sign_in(base, fresh_demo.admin_key) as client:
        token = _csrf(client.get("/ui/alerts").text)
        client.post(f"/ui/alerts/{fresh_demo.alert_id}/resolve", data={"csrf": token})
        assert "No open alerts." in client.get("/ui/alerts").text


def test_rollback_restores_the_previous_version(fresh_demo: Demo) -> None:
    """Confirming the rollback puts version 1 back in production, with the reason on record."""
    from keel.project import Project
    from keel.training.registry import Registry

    with serving(fresh_demo.root) as base, sign_in(base, fresh_demo.admin_key) as client:
        token = _csrf(client.get("/ui/deployments/rollback").text)
        form = {"csrf": token, "version": "1", "reason": "latency regression"}
        assert client.post("/ui/deployments/rollback", data=form).status_code == 303
    with Project.open(fresh_demo.root) as project:
        production = Registry(project.store).production()
        assert production is not None and production.version == 1
        event = Registry(project.store).history(1)[-1]
    assert event.actor == "ui:ops-admin" and "latency regression" in event.reason


def test_revoking_a_key_ends_its_sessions(fresh_demo: Demo) -> None:
    """A session whose key is revoked is no longer let in."""
    from keel.project import Project
    from keel.serving.keys import KeyStore

    with serving(fresh_demo.root) as base, sign_in(base, fresh_demo.viewer_key) as client:
        assert client.get("/ui/").status_code == 200
        with Project.open(fresh_demo.root) as project:
            KeyStore(project.store).revoke("analyst")
        assert client.get("/ui/").status_code == 303


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("/ui/", "No model in production yet"),
        ("/ui/registry", "No model versions yet"),
        ("/ui/deployments", "Nothing deployed yet"),
        ("/ui/drift", "No drift reference is set"),
        ("/ui/performance", "Nothing recorded yet"),
        ("/ui/alerts", "No open alerts."),
        ("/ui/data", "No ingestion runs yet"),
        ("/ui/runbook", "No escalation contacts"),
    ],
)
def test_empty_project_pages_explain_themselves(empty: Empty, path: str, text: str) -> None:
    """With no models, traffic or data, each page says what is missing and how to start."""
    with sign_in(empty.base, empty.key) as client:
        response = client.get(path)
    assert response.status_code == 200
    assert text in response.text


def test_the_login_page_hint_creates_a_viewer_key(base_url: str, project_dir: Path) -> None:
    """The command the login page shows, run as shown, makes a key that may sign in."""
    import json

    from typer.testing import CliRunner

    from keel.cli.main import app

    page = httpx.get(base_url + "/ui/login").text
    shown = re.search(r"<code>keel (keys create [^<]+)</code>", page)
    assert shown is not None
    command = [*shown.group(1).replace("NAME", "analyst").split(), "--json", "-p", str(project_dir)]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0 and json.loads(result.output)["scopes"] == ["viewer"]


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match is not None, "no CSRF token on the page"
    return match.group(1)


def test_the_overview_shows_the_last_rollout(signed_in: Client, demo: Demo) -> None:
    """Which version was rolled out last, how far it got, and why it ended."""
    text = signed_in(demo.viewer_key).get("/ui/").text
    assert "as canary at 5% of traffic," in text and "rolled back: canary rolled back" in text


def test_the_deployments_page_shows_the_delivery_measures(signed_in: Client, demo: Demo) -> None:
    """The demo's history: versions 1 and 2 to production, version 3 as a canary rolled
    back by its guards, so three changes and one of them failed (33%)."""
    page = signed_in(demo.viewer_key).get("/ui/deployments").text
    section = page.split('<section id="delivery">', 1)[1].split("</section>", 1)[0]
    assert "deployments: 3 (" in section
    assert "change failure rate: 33% (1 rolled back)" in section
