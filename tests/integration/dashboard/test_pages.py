"""The dashboard's pages over HTTP, in process: who may see them, what they show, and how forms
are guarded. The browser tests drive the same pages in Chromium."""

from __future__ import annotations

import re

import httpx

from gateway.jobs.read import MAX_PER_PAGE
from gateway.runtime import Gateway
from gateway.store import fetch_one

from ..support import WS, job_of, submit
from .conftest import EXPECTED_HEALTH, HOLDER, TRIGGER_ERROR, Seeded

SAME_ORIGIN = {"Origin": "http://gateway.test"}


def bearer(token: str) -> dict[str, str]:
    """The header the API takes."""
    return {"Authorization": f"Bearer {token}"}


def health_of_rows(html: str) -> dict[str, str]:
    """Each trigger row's path and health colour, as the page marks them."""
    rows = re.findall(r'<tr data-health="(\w+)" data-kind="\w+" data-path="([^"]+)"', html)
    return {path: colour for colour, path in rows}


async def test_triggers_page_gives_every_trigger_its_health_colour(
    dashboard_client: httpx.AsyncClient, asgi_gateway: tuple[Gateway, Seeded]
) -> None:
    _, seeded = asgi_gateway
    page = await dashboard_client.get(f"/ui/w/{WS}/", headers=bearer(seeded.admin_token))
    assert page.status_code == 200, page.text
    assert health_of_rows(page.text) == EXPECTED_HEALTH
    assert HOLDER in page.text
    assert "3 events in the last hour" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_trigger_error_is_shown_as_text_not_markup(
    dashboard_client: httpx.AsyncClient, asgi_gateway: tuple[Gateway, Seeded]
) -> None:
    _, seeded = asgi_gateway
    page = await dashboard_client.get(f"/ui/w/{WS}/", headers=bearer(seeded.admin_token))
    assert TRIGGER_ERROR not in page.text
    assert "&lt;img src=x onerror=&#34;document.title=1&#34;&gt;broker down" in page.text


async def test_without_a_token_the_sign_in_form_answers_401(
    dashboard_client: httpx.AsyncClient,
) -> None:
    page = await dashboard_client.get(f"/ui/w/{WS}/")
    assert page.status_code == 401
    assert 'name="token"' in page.text
    assert f'name="next" value="/ui/w/{WS}/"' in page.text


async def test_a_token_in_the_query_string_is_not_accepted(
    dashboard_client: httpx.AsyncClient, asgi_gateway: tuple[Gateway, Seeded]
) -> None:
    _, seeded = asgi_gateway
    page = await dashboard_client.get(f"/ui/w/{WS}/", params={"token": seeded.admin_token})
    assert page.status_code == 401


async def test_an_unknown_token_and_its_cookie_are_refused(
    dashboard_client: httpx.AsyncClient,
) -> None:
    dashboard_client.cookies.set("gateway_token", "not-a-token", domain="gateway.test")
    page = await dashboard_client.get(f"/ui/w/{WS}/")
    assert page.status_code == 401
    assert "invalid or expired token" in page.text
    assert "gateway_token=" in page.headers["set-cookie"]  # the stale cookie is dropped


async def test_a_workspace_the_token_cannot_see_is_not_found(
    dashboard_client: httpx.AsyncClient, asgi_gateway: tuple[Gateway, Seeded]
) -> None:
    _, seeded = asgi_gateway
    page = await dashboard_client.get("/ui/w/elsewhere/", headers=bearer(seeded.admin_token))
    assert page.status_code == 404


async def test_sign_in_keeps_the_token_in_an_http_only_cookie(
    dashboard_client: httpx.AsyncClient, asgi_gateway: tuple[Gateway, Seeded]
) -> None:
    _, seeded = asgi_gateway
    signed = await dashboard_client.post(
        "/ui/sign-in",
        data={"token": seeded.admin_token, "next": f"/ui/w/{WS}/quarantine"},
        headers=SAME_ORIGIN,
    )
    assert signed.status_code == 303
    assert signed.headers["location"] == f"/ui/w/{WS}/quarantine"
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "Path=/ui" in cookie
    assert "SameSite=lax" in cookie
    home = await dashboard_client.get("/ui/")
    assert home.status_code == 200
    assert f'href="/ui/w/{WS}/"' in home.text


async def test_sign_in_returns_only_to_dashboard_pages(
    dashboard_client: httpx.AsyncClient, asgi_gateway: tuple[Gateway, Seeded]
) -> None:
    _, seeded = asgi_gateway
    for elsewhere in ("https://evil.example/", "//evil.example/ui/", "/api/w/test/jobs/list"):
        signed = await dashboard_client.post(
            "/ui/sign-in",
            data={"token": seeded.admin_token, "next": elsewhere},
            headers=SAME_ORIGIN,
        )
        assert signed.headers["location"] == "/ui/", elsewhere


async def test_sign_in_with_a_wrong_token_shows_the_form_again(
    dashboard_client: httpx.AsyncClient,
) -> None:
    refused = await dashboard_client.post(
        "/ui/sign-in", data={"token": "wrong"}, headers=SAME_ORIGIN
    )
    assert refused.status_code == 401
    assert "invalid or expired token" in refused.text
    assert "set-cookie" not in refused.headers


async def test_a_form_from_another_site_is_refused(
    dashboard_client: httpx.AsyncClient, asgi_gateway: tuple[Gateway, Seeded]
) -> None:
    gateway, seeded = asgi_gateway
    dashboard_client.cookies.set("gateway_token", seeded.admin_token, domain="gateway.test")
    url = f"/ui/w/{WS}/quarantine/{seeded.quarantined_id}/redrive"
    for headers in ({"Origin": "https://evil.example"}, {}, {"Origin": "null"}):
        refused = await dashboard_client.post(url, headers=headers)
        assert refused.status_code == 403, headers
    row = await fetch_one(
        gateway.store, "get_quarantined_event", workspace_id=WS, id=seeded.quarantined_id
    )
    assert row is not None
    assert row["redriven_job_id"] is None


async def test_the_quarantine_is_for_admins_only(
    dashboard_client: httpx.AsyncClient, asgi_gateway: tuple[Gateway, Seeded]
) -> None:
    _, seeded = asgi_gateway
    page = await dashboard_client.get(f"/ui/w/{WS}/quarantine", headers=bearer(seeded.viewer_token))
    assert page.status_code == 403
    assert "only workspace admins" in page.text
    triggers = await dashboard_client.get(f"/ui/w/{WS}/", headers=bearer(seeded.viewer_token))
    # bob sees the workspace's shared triggers, not alice's own.
    assert health_of_rows(triggers.text) == {"f/t/mail": "green"}
    assert "Quarantine</a>" not in triggers.text


async def test_redrive_with_a_bearer_header_creates_the_job(
    dashboard_client: httpx.AsyncClient, asgi_gateway: tuple[Gateway, Seeded]
) -> None:
    gateway, seeded = asgi_gateway
    redriven = await dashboard_client.post(
        f"/ui/w/{WS}/quarantine/{seeded.quarantined_id}/redrive",
        headers={**bearer(seeded.admin_token), **SAME_ORIGIN},
    )
    assert redriven.status_code == 303
    row = await fetch_one(
        gateway.store, "get_quarantined_event", workspace_id=WS, id=seeded.quarantined_id
    )
    assert row is not None
    assert row["redriven_job_id"] is not None
    page = await dashboard_client.get(
        redriven.headers["location"], headers=bearer(seeded.admin_token)
    )
    assert f'<code class="redriven-job">{row["redriven_job_id"]}</code>' in page.text


async def test_busy_workspace_charts_what_the_newest_jobs_cover(
    dashboard_client: httpx.AsyncClient, asgi_gateway: tuple[Gateway, Seeded]
) -> None:
    gateway, seeded = asgi_gateway
    busy = job_of("hello", trigger_kind="kafka", trigger="u/alice/healthy")
    await submit(gateway.store, *[busy] * MAX_PER_PAGE)
    page = await dashboard_client.get(f"/ui/w/{WS}/", headers=bearer(seeded.admin_token))
    assert "The charts count the jobs created since" in page.text
    assert f"{MAX_PER_PAGE} events in the last hour" in page.text
    # The broken trigger's jobs are older than the newest page: its last event is looked up.
    broken = page.text.split('data-path="u/alice/broken"', 1)[1].split("</tr>", 1)[0]
    assert re.search(r'<td class="last-event">\s*<time datetime=', broken), broken
