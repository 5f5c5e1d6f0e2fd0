"""`LockboxSettings.notificationEmails` (contract section 6): set by a
TENANT_ADMIN through updateLockboxSettings, validated, audited, and read back
by that tenant's admins only (who else may read it: tests/api/test_isolation.py)."""

from __future__ import annotations

from typing import Any

from tests.api.helpers import audit_events
from tests.conftest import Live, World
from tests.support import WsClient

SET_EMAILS = """
mutation($input: LockboxSettingsInput!) {
  updateLockboxSettings(input: $input) {
    name settings { pendingRequestTtlSeconds notificationEmails }
  }
}
"""

MY_SETTINGS = """
{ me { tenant { name settings {
  pendingRequestTtlSeconds defaultAccessSeconds maxAccessSeconds notificationEmails } } } }
"""

WATCHERS = ["security@contoso.example", "soc@contoso.example"]


async def my_settings(live: Live, world: World, principal: str = "contoso-admin") -> Any:
    data = await live.http.data(world.token(principal), MY_SETTINGS)
    return data["me"]["tenant"]["settings"]


async def test_a_tenant_admin_sets_reads_and_clears_its_notification_emails(
    live: Live, world: World
) -> None:
    token = world.token("contoso-admin")
    assert (await my_settings(live, world))["notificationEmails"] == []
    audit_before = await audit_events(live, token)

    data = await live.http.data(token, SET_EMAILS, input={"notificationEmails": WATCHERS})
    assert data["updateLockboxSettings"] == {
        "name": "contoso",
        "settings": {"pendingRequestTtlSeconds": 4 * 24 * 3600, "notificationEmails": WATCHERS},
    }
    assert (await my_settings(live, world))["notificationEmails"] == WATCHERS

    # Changing another setting leaves the list alone.
    data = await live.http.data(token, SET_EMAILS, input={"pendingRequestTtlSeconds": 3600})
    assert data["updateLockboxSettings"]["settings"]["notificationEmails"] == WATCHERS

    # The same list again changes nothing and appends nothing.
    await live.http.data(token, SET_EMAILS, input={"notificationEmails": WATCHERS})

    cleared = await live.http.data(token, SET_EMAILS, input={"notificationEmails": []})
    assert cleared["updateLockboxSettings"]["settings"]["notificationEmails"] == []
    assert (await my_settings(live, world))["notificationEmails"] == []

    # Each change is audited once, with the whole new settings.
    new = (await audit_events(live, token))[len(audit_before) :]
    assert [e["action"] for e in new] == ["tenant.settings_updated"] * 3
    assert [e["detail"]["notificationEmails"] for e in new] == [WATCHERS, WATCHERS, []]
    assert new[1]["detail"]["pendingRequestTtlSeconds"] == 3600
    assert {e["actor"]["name"] for e in new} == {"contoso-admin"}


async def test_addresses_are_trimmed_and_repeats_kept_once(live: Live, world: World) -> None:
    token = world.token("contoso-admin")
    sent = [" Security@Contoso.example", "security@contoso.example ", "soc@contoso.example"]

    data = await live.http.data(token, SET_EMAILS, input={"notificationEmails": sent})

    expected = ["Security@Contoso.example", "soc@contoso.example"]
    assert data["updateLockboxSettings"]["settings"]["notificationEmails"] == expected
    assert (await my_settings(live, world))["notificationEmails"] == expected


BAD_LISTS: list[tuple[list[str], str]] = [
    ([f"w{i}@contoso.example" for i in range(51)], "at most 50"),
    (["security@contoso.example", "not an address"], "'not an address'"),
    (["security@contoso.example", "no-at-sign.example"], "'no-at-sign.example'"),
    (["@contoso.example"], "not a valid e-mail address"),
    ([""], "not a valid e-mail address"),
    (["a@b@contoso.example"], "not a valid e-mail address"),
    (["<security@contoso.example>"], "not a valid e-mail address"),
    (["security@contoso..example"], "not a valid e-mail address"),
    (["security@contoso.example\nBcc: everyone@example.com"], "not a valid e-mail address"),
]


async def test_bad_notification_emails_are_refused_and_change_nothing(
    live: Live, world: World
) -> None:
    token = world.token("contoso-admin")
    await live.http.data(token, SET_EMAILS, input={"notificationEmails": WATCHERS})
    settings_before = await my_settings(live, world)
    audit_before = await audit_events(live, token)

    for addresses, fragment in BAD_LISTS:
        for extra in ({}, {"pendingRequestTtlSeconds": 3600}):
            error = await live.http.error(
                token, SET_EMAILS, input={"notificationEmails": addresses, **extra}
            )
            assert error["extensions"]["code"] == "BAD_USER_INPUT", (addresses, error)
            assert "notificationEmails" in error["message"], error["message"]
            assert fragment in error["message"], (fragment, error["message"])

    # A null entry is refused by the schema itself ([String!]).
    error = await live.http.error(token, SET_EMAILS, input={"notificationEmails": [None]})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"

    assert await my_settings(live, world) == settings_before
    assert await audit_events(live, token) == audit_before


async def test_fifty_addresses_are_accepted(live: Live, world: World) -> None:
    fifty = [f"w{i}@contoso.example" for i in range(50)]
    data = await live.http.data(
        world.token("contoso-admin"), SET_EMAILS, input={"notificationEmails": fifty}
    )
    assert data["updateLockboxSettings"]["settings"]["notificationEmails"] == fifty


REQUEST_UPDATES = """
subscription { accessRequestUpdates { id tenant { settings { notificationEmails } } } }
"""
CREATE = """
mutation($ticket: ID!) {
  createAccessRequest(input: {ticketId: $ticket, justification: "slow queries",
    resources: ["/subscriptions/contoso-prod/rg1"]}) { id }
}
"""


async def test_a_subscription_shows_the_list_to_the_admin_and_to_nobody_else(
    live: Live, world: World
) -> None:
    await live.http.data(
        world.token("contoso-admin"), SET_EMAILS, input={"notificationEmails": WATCHERS}
    )
    watchers = {p: WsClient(live.ws_url) for p in ("contoso-admin", "support-manager")}
    try:
        for principal, client in watchers.items():
            await client.connect(world.token(principal))
            await client.subscribe("u", REQUEST_UPDATES)
        created = await live.http.data(
            world.token("engineer-alice"), CREATE, ticket=world.ticket("contoso")
        )
        request_id = created["createAccessRequest"]["id"]
        seen = {p: (await c.next_data())["accessRequestUpdates"] for p, c in watchers.items()}
    finally:
        for client in watchers.values():
            await client.close()

    assert seen == {
        "contoso-admin": {
            "id": request_id,
            "tenant": {"settings": {"notificationEmails": WATCHERS}},
        },
        "support-manager": {"id": request_id, "tenant": {"settings": {"notificationEmails": []}}},
    }
