"""CORS (contract section 11): off unless LOCKBOX_CORS_ORIGINS lists origins;
preflights answered for the listed origins only."""

from __future__ import annotations

import pytest

from lockbox.api.cors import cors_origins
from tests.conftest import Live, World

APP = "https://app.example.com"
OTHER = "https://evil.example.net"


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def test_cors_is_off_by_default(live: Live, world: World) -> None:
    answer = await live.http.client.options(live.http.url, headers=preflight(APP))
    call = await live.http.client.post(
        live.http.url,
        json={"query": "{ me { name } }"},
        headers={"Origin": APP, "Authorization": f"Bearer {world.token('contoso-admin')}"},
    )

    assert answer.status_code == 405
    for response in (answer, call):
        assert not [h for h in response.headers if h.lower().startswith("access-control-")]


@pytest.mark.parametrize("live", [{"cors_origins": (APP,)}], indirect=True)
async def test_listed_origins_are_allowed_and_others_refused(live: Live, world: World) -> None:
    allowed = await live.http.client.options(live.http.url, headers=preflight(APP))
    refused = await live.http.client.options(live.http.url, headers=preflight(OTHER))
    call = await live.http.client.post(
        live.http.url,
        json={"query": "{ me { name } }"},
        headers={"Origin": APP, "Authorization": f"Bearer {world.token('contoso-admin')}"},
    )
    foreign = await live.http.client.post(
        live.http.url, json={"query": "{ __typename }"}, headers={"Origin": OTHER}
    )

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == APP
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in allowed.headers
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert call.headers["access-control-allow-origin"] == APP
    assert call.json() == {"data": {"me": {"name": "contoso-admin"}}}
    assert "access-control-allow-origin" not in foreign.headers


def test_a_wildcard_or_a_path_is_refused_at_start() -> None:
    for bad in (("*",), ("https://app.example.com/path",)):
        with pytest.raises(ValueError, match="LOCKBOX_CORS_ORIGINS"):
            cors_origins(bad)
    assert cors_origins(("https://App.Example.com:443",)) == (APP,)
