"""The customer's console at /dashboard (contract section 7), driven in
Chromium against a real server, with the engineer's side played through
the API: decisions, live activity, revocation, history, administration,
the audit log, deep links, read-only roles, hostile text and reconnects."""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.async_api import WebSocketRoute, expect

from lockbox.clock import ManualClock
from lockbox.domain.lifecycle import Action
from lockbox.services.deps import Deps
from tests.api.helpers import (
    CREATE,
    DEV,
    JUSTIFICATION,
    PROD,
    act,
    create_request,
    read_request,
    seed_request,
)
from tests.browser.conftest import BrowserPage
from tests.conftest import Live, World

LIVE = 10_000  # ms: waiting for something the server pushes
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1400, "height": 900}
OUT_OF_SCOPE = "/subscriptions/contoso-dev/resourceGroups/rg-secret"
DASH = "\N{EN DASH}"  # the console writes ranges with an en dash
HOSTILE = '<img src=x onerror="window.__xss=1"> <script>window.__xss=1</script>'

AUTHORIZE = """
mutation($input: AuthorizeAccessInput!) {
  authorizeAccess(input: $input) { allowed reason event { id cursor } }
}
"""
SETTINGS = (
    "{ me { tenant { lockboxEnabled settings { defaultAccessSeconds notificationEmails } } } }"
)


async def sign_in(
    page: BrowserPage, world: World, principal: str, path: str = "/dashboard"
) -> None:
    await page.goto(path)
    await page.locator("#token").fill(world.token(principal))
    await page.locator("#signin-submit").click()
    await expect(page.locator("#live")).to_have_text("Live", timeout=LIVE)


async def authorize(
    live: Live, world: World, request_id: str, resource: str, action: str, detail: Any = None
) -> dict[str, Any]:
    data = await live.http.data(
        world.token("engineer-alice"),
        AUTHORIZE,
        input={"requestId": request_id, "resource": resource, "action": action, "detail": detail},
    )
    decision: dict[str, Any] = data["authorizeAccess"]
    return decision


async def approved_request(live: Live, world: World, **create: Any) -> str:
    request_id = str((await create_request(live, world, **create))["id"])
    body = await act(live, world.token("contoso-admin"), "approveRequest", request_id)
    assert not body.get("errors"), body
    return request_id


def card(page: BrowserPage, listing: str, request_id: str) -> Any:
    return page.locator(f'#{listing} [data-request-id="{request_id}"]')


async def test_approver_decides_watches_live_activity_and_revokes(
    page: BrowserPage, live: Live, world: World
) -> None:
    request_id = str((await create_request(live, world))["id"])
    await sign_in(page, world, "contoso-admin")

    pending = card(page, "pending-list", request_id)
    await expect(pending).to_contain_text("engineer-alice")
    await expect(pending).to_contain_text(PROD)
    await expect(pending).to_contain_text(JUSTIFICATION)
    await expect(pending).to_contain_text("contoso: customer reports slow queries")
    await expect(pending).to_contain_text("Decide before")
    await pending.locator("input.reason").fill("ticket checks out")
    await pending.locator('button[data-action="approve"]').click()

    window = card(page, "open-list", request_id)
    await expect(window).to_contain_text("Access open until", timeout=LIVE)
    await expect(pending).to_have_count(0)
    request = await read_request(live, world, request_id)
    assert request is not None
    assert (request["status"], request["decisionReason"]) == ("APPROVED", "ticket checks out")
    countdown = window.locator(".window .countdown")
    first = await countdown.text_content()
    assert first and re.fullmatch(r"ends in (7 h 59 min \d+ s|8 h 0 min 0 s)", first), first
    await expect(countdown).not_to_have_text(first, timeout=LIVE)  # it ticks
    assert await window.locator("input.reason").input_value() == ""

    await window.locator("a.more").click()
    await expect(page.page).to_have_url(re.compile(f"#/requests/{request_id}$"))
    await expect(page.locator("#request-decision")).to_contain_text("Approved by contoso-admin")
    await expect(page.locator("#feed-status")).to_contain_text("Live")

    allowed = await authorize(live, world, request_id, f"{PROD}/vm1", "read logs")
    assert allowed["allowed"] is True
    events = page.locator("#event-list .event")
    await expect(events).to_have_count(1, timeout=LIVE)
    await expect(events.first).to_contain_text("read logs")
    await expect(events.first).to_have_class(re.compile(r"\ballowed\b"))

    denied = await authorize(live, world, request_id, OUT_OF_SCOPE, "peek")
    assert denied["allowed"] is False
    apart = page.locator("#denied-list .event")
    await expect(apart).to_have_count(1, timeout=LIVE)
    await expect(apart.first).to_contain_text("peek")
    await expect(apart.first).to_contain_text(OUT_OF_SCOPE)
    await expect(apart.first).to_contain_text(denied["reason"])
    await expect(page.locator("#denied-count")).to_have_text("1")
    await expect(events).to_have_count(2)
    await expect(events.first).to_have_class(re.compile(r"\bdenied\b"))

    decision = page.locator("#request-decision")
    await decision.locator("input.reason").fill("done here")
    await decision.locator('button[data-action="revoke"]').click()
    await expect(page.locator("#request-title .status")).to_have_text("Revoked", timeout=LIVE)
    await expect(decision).to_contain_text("access revoked at")
    await expect(decision).to_contain_text("done here")
    await expect(decision.locator("button")).to_have_count(0)

    later = await authorize(live, world, request_id, f"{PROD}/vm1", "read more")
    assert later["allowed"] is False
    await expect(apart).to_have_count(2, timeout=LIVE)
    await expect(apart.first).to_contain_text("read more")
    await expect(apart.first).to_contain_text("REVOKED")
    await expect(page.locator("#feed-status")).to_contain_text("3 events, 2 denied")

    await page.locator('#nav a[data-nav="requests"]').click()
    await expect(card(page, "open-list", request_id)).to_have_count(0)
    page.assert_clean()


async def test_deep_link_opens_one_request_and_hostile_text_stays_text(
    page: BrowserPage, live: Live, world: World
) -> None:
    data = await live.http.data(
        world.token("engineer-alice"),
        CREATE,
        input={"ticketId": world.ticket("contoso"), "resources": [PROD], "justification": HOSTILE},
    )
    request_id = data["createAccessRequest"]["id"]
    body = await live.http.call(
        world.token("contoso-admin"),
        "mutation($id: ID!, $r: String) { approveRequest(id: $id, reason: $r) { status } }",
        id=request_id,
        r=HOSTILE,
    )
    assert body["data"]["approveRequest"]["status"] == "APPROVED"
    await authorize(live, world, request_id, f"{PROD}/vm1", HOSTILE, {"note": HOSTILE})
    await authorize(live, world, request_id, OUT_OF_SCOPE, "peek", [HOSTILE])

    # The link an approver's mail carries: sign in, and land on that request.
    await page.goto(f"/dashboard#/requests/{request_id}")
    await expect(page.locator("#signin-next")).to_be_visible()
    await page.locator("#token").fill(world.token("contoso-admin"))
    await page.locator("#signin-submit").click()
    await expect(page.page).to_have_url(re.compile(f"#/requests/{request_id}$"))
    summary = page.locator("#request-summary")
    await expect(summary).to_contain_text(request_id)
    await expect(summary.locator(".justification")).to_have_text(HOSTILE)
    await expect(page.locator("#request-decision")).to_contain_text("Approved by contoso-admin")
    await expect(page.locator("#request-decision q")).to_have_text(HOSTILE)

    events = page.locator("#event-list .event")
    await expect(events).to_have_count(2, timeout=LIVE)
    await expect(events.nth(1).locator(".action")).to_have_text(HOSTILE)
    await expect(events.nth(1).locator(".detail")).to_have_text(
        json.dumps({"note": HOSTILE}, separators=(",", ":"))
    )
    await expect(page.locator("#denied-list .event .detail")).to_have_text(json.dumps([HOSTILE]))
    assert await page.evaluate("window.__xss") is None
    assert await page.locator("#main img, #main script").count() == 0
    page.assert_clean()


async def test_admin_switches_lockbox_edits_settings_and_reads_the_audit_log(
    page: BrowserPage, live: Live, world: World
) -> None:
    admin = world.token("contoso-admin")
    await sign_in(page, world, "contoso-admin", "/dashboard#/admin")
    state = page.locator("#lockbox-state")
    await expect(state).to_contain_text("Lockbox is on")
    toggle = page.locator("#lockbox-toggle")
    dialog = page.locator("#confirm")

    await toggle.click()
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("Turn lockbox off for contoso?")
    await page.locator("#confirm-cancel").click()
    await expect(dialog).to_be_hidden()
    assert (await live.http.data(admin, SETTINGS))["me"]["tenant"]["lockboxEnabled"] is True

    await toggle.click()
    await page.locator("#confirm-ok").click()
    await expect(state).to_contain_text("Lockbox is off")
    await expect(page.locator("#lockbox-off")).to_contain_text("Lockbox is off for contoso")
    assert (await live.http.data(admin, SETTINGS))["me"]["tenant"]["lockboxEnabled"] is False

    await toggle.click()
    await expect(dialog).to_contain_text("Turn lockbox on for contoso?")
    await page.locator("#confirm-ok").click()
    await expect(state).to_contain_text("Lockbox is on")
    await expect(page.locator("#lockbox-off")).to_be_hidden()
    assert (await live.http.data(admin, SETTINGS))["me"]["tenant"]["lockboxEnabled"] is True

    # The API's validation message is shown next to the field it names.
    await page.locator("#set-defaultAccessSeconds").fill("90000")
    await page.locator("#settings-save").click()
    error = page.locator("#err-defaultAccessSeconds")
    await expect(error).to_contain_text("defaultAccessSeconds must be a whole number of seconds")
    await expect(page.locator("#set-defaultAccessSeconds")).to_have_attribute(
        "aria-invalid", "true"
    )
    await expect(page.locator("#err-maxAccessSeconds")).to_be_hidden()
    await page.locator("#set-defaultAccessSeconds").fill("3600")
    await page.locator("#set-notificationEmails").fill("not an address")
    await page.locator("#settings-save").click()
    await expect(page.locator("#err-notificationEmails")).to_contain_text("notificationEmails")
    await expect(error).to_be_hidden()
    await page.locator("#set-notificationEmails").fill(
        "secops@example.com\nLockbox-Watch@example.com"
    )
    await page.locator("#settings-save").click()
    await expect(page.locator("#notice")).to_contain_text("Settings saved")
    await expect(page.locator("#err-notificationEmails")).to_be_hidden()
    settings = (await live.http.data(admin, SETTINGS))["me"]["tenant"]["settings"]
    assert settings["defaultAccessSeconds"] == 3600
    assert settings["notificationEmails"] == ["secops@example.com", "Lockbox-Watch@example.com"]
    await expect(page.locator("#hint-defaultAccessSeconds")).to_have_text("= 1 h")

    await page.locator('#nav a[data-nav="audit"]').click()
    rows = page.locator("#audit-rows tr")
    await expect(rows.first).to_contain_text("tenant.settings_updated")
    await expect(rows.nth(1)).to_contain_text("tenant.lockbox_enabled")
    await expect(rows.nth(2)).to_contain_text("tenant.lockbox_disabled")
    await expect(rows.nth(2)).to_contain_text("contoso-admin")
    await expect(rows.last).to_contain_text("tenant.created")
    page.assert_clean()


async def test_history_and_audit_log_are_newest_first_filtered_and_paged(
    page: BrowserPage, live: Live, world: World, deps: Deps, clock: ManualClock
) -> None:
    made: list[str] = []
    for n in range(45):
        clock.advance(1)  # distinct creation times, so "newest" is unambiguous
        steps = ((Action.DENY, "contoso-admin"),) if n % 10 == 3 else ()
        made.append(
            await seed_request(
                deps, world, engineer="engineer-bob" if n % 2 else "engineer-alice", then=steps
            )
        )
    denied = [made[n] for n in range(45) if n % 10 == 3]

    await sign_in(page, world, "contoso-auditor", "/dashboard#/history")
    rows = page.locator("#history-rows tr")
    await expect(page.locator("#history-range")).to_have_text(
        f"Requests 1{DASH}25 of 45, newest first"
    )
    await expect(rows).to_have_count(25)
    await expect(rows.first).to_have_attribute("data-request-id", made[-1])
    await expect(rows.last).to_have_attribute("data-request-id", made[20])
    await expect(page.locator("#history-newer")).to_be_disabled()

    await page.locator("#history-older").click()
    await expect(page.locator("#history-range")).to_have_text(
        f"Requests 26{DASH}45 of 45, newest first"
    )
    await expect(rows).to_have_count(20)
    await expect(rows.last).to_have_attribute("data-request-id", made[0])
    await expect(page.locator("#history-older")).to_be_disabled()
    await expect(page.page).to_have_url(re.compile(r"#/history\?page=2$"))

    await page.locator("#history-status").select_option("DENIED")
    await expect(page.locator("#history-range")).to_contain_text(f"of {len(denied)} with status")
    await expect(rows).to_have_count(len(denied))
    ids = [await row.get_attribute("data-request-id") for row in await rows.all()]
    assert ids == denied[::-1]
    for row in await rows.all():
        await expect(row.locator(".status")).to_have_text("Denied")
    await rows.first.locator("a").click()
    await expect(page.locator("#request-decision")).to_contain_text("Denied by contoso-admin")

    # 45 created, 5 denied, and the demo world's own events: two pages of 50.
    await page.locator('#nav a[data-nav="audit"]').click()
    audit = page.locator("#audit-rows tr")
    await expect(audit).to_have_count(50)
    await expect(page.locator("#audit-range")).to_contain_text(f"Events 1{DASH}50 of")
    await expect(audit.first).to_contain_text("request.created")
    found = re.search(r" of (\d+),", await page.locator("#audit-range").text_content() or "")
    assert found
    total = int(found.group(1))
    assert total > 50
    await expect(audit.first).to_have_attribute("data-seq", str(total))
    await page.locator("#audit-older").click()
    await expect(audit).to_have_count(total - 50)
    await expect(audit.last).to_have_attribute("data-seq", "1")
    await expect(audit.last).to_contain_text("tenant.created")
    page.assert_clean()


async def test_read_only_roles_see_no_buttons_they_cannot_use(
    page: BrowserPage, live: Live, world: World
) -> None:
    pending = str((await create_request(live, world))["id"])
    approved = await approved_request(live, world)
    dev = str((await create_request(live, world, resources=[DEV]))["id"])

    await sign_in(page, world, "contoso-auditor")
    await expect(card(page, "pending-list", pending)).to_contain_text("Read only")
    await expect(card(page, "open-list", approved)).to_contain_text("Read only")
    await expect(card(page, "pending-list", dev)).to_be_visible()
    await expect(page.locator("#main button[data-action]")).to_have_count(0)
    await expect(page.locator("#requests-note")).to_contain_text("Read only")
    await expect(page.locator("#nav-audit")).to_be_visible()
    await expect(page.locator("#nav-admin")).to_be_hidden()
    await page.goto(f"/dashboard#/requests/{approved}")
    await expect(page.locator("#request-decision")).to_contain_text("Read only")
    await expect(page.locator("#main button[data-action]")).to_have_count(0)
    await page.goto("/dashboard#/admin")
    await expect(page.locator("#unavailable-text")).to_contain_text("for tenant admins")
    await expect(page.locator("#lockbox-toggle")).to_be_hidden()

    # An approver decides what its scopes cover, and sees nothing else.
    await page.locator("#forget").click()
    await sign_in(page, world, "contoso-approver-dev", "/dashboard#/")
    dev_card = card(page, "pending-list", dev)
    await expect(dev_card.locator('button[data-action="approve"]')).to_be_visible()
    await expect(dev_card.locator('button[data-action="deny"]')).to_be_visible()
    await expect(card(page, "pending-list", pending)).to_have_count(0)
    await expect(page.locator("#nav-audit")).to_be_hidden()
    await expect(page.locator("#nav-admin")).to_be_hidden()
    await dev_card.locator("input.reason").fill("not this week")
    await dev_card.locator('button[data-action="deny"]').click()
    await expect(dev_card).to_have_count(0, timeout=LIVE)
    request = await read_request(live, world, dev)
    assert request is not None
    assert (request["status"], request["decisionReason"]) == ("DENIED", "not this week")
    page.assert_clean()


async def test_forget_clears_the_session(page: BrowserPage, live: Live, world: World) -> None:
    await sign_in(page, world, "contoso-admin")
    assert await page.evaluate("sessionStorage.getItem('lockbox.token')") == world.token(
        "contoso-admin"
    )
    await page.reload()  # the token survives a reload of the tab
    await expect(page.locator("#live")).to_have_text("Live", timeout=LIVE)
    await expect(page.locator("#who")).to_contain_text("contoso-admin")

    await page.locator("#forget").click()
    await expect(page.locator("#view-signin")).to_be_visible()
    await expect(page.locator("#session")).to_be_hidden()
    assert await page.evaluate("sessionStorage.length") == 0
    await page.reload()
    await expect(page.locator("#view-signin")).to_be_visible()
    await expect(page.locator("#nav")).to_be_hidden()

    # A refused token is said so, in words, and not kept.
    await page.locator("#token").fill("lbx_not-a-real-token")
    await page.locator("#signin-submit").click()
    await expect(page.locator("#signin-error")).to_contain_text("UNAUTHENTICATED")
    assert await page.evaluate("sessionStorage.length") == 0
    page.assert_clean()


async def test_a_dropped_connection_shows_as_lost_and_resumes_from_its_cursor(
    page: BrowserPage, live: Live, world: World
) -> None:
    request_id = await approved_request(live, world)
    sockets: list[WebSocketRoute] = []
    subscribed: list[dict[str, Any]] = []
    refuse = {"on": False}

    async def through(socket: WebSocketRoute) -> None:
        if refuse["on"]:
            await socket.close(code=1012, reason="test: server away")
            return
        sockets.append(socket)
        server = socket.connect_to_server()

        def to_server(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame.get("type") == "subscribe" and "engineerActivity" in frame["payload"]["query"]:
                subscribed.append(frame["payload"]["variables"])
            server.send(message)

        socket.on_message(to_server)

    await page.route_web_socket(re.compile(r"/graphql$"), through)
    await sign_in(page, world, "contoso-admin", f"/dashboard#/requests/{request_id}")
    first = await authorize(live, world, request_id, f"{PROD}/a", "first")
    events = page.locator("#event-list .event")
    await expect(events).to_have_count(1, timeout=LIVE)

    refuse["on"] = True
    await sockets[0].close(code=1012, reason="test: server restart")
    await expect(page.locator("#live")).to_have_text("Connection lost")
    await expect(page.locator("#banner")).to_contain_text("Live connection lost")
    await expect(page.locator("#feed-status")).to_contain_text("Connection lost")
    await authorize(live, world, request_id, f"{PROD}/b", "while away")
    await authorize(live, world, request_id, OUT_OF_SCOPE, "peek while away")

    refuse["on"] = False
    await expect(page.locator("#live")).to_have_text("Live", timeout=20_000)
    await expect(page.locator("#banner")).to_be_hidden()
    await expect(events).to_have_count(3, timeout=LIVE)
    await authorize(live, world, request_id, f"{PROD}/c", "after")
    await expect(events).to_have_count(4, timeout=LIVE)
    actions = await page.locator("#event-list .event .action").all_text_contents()
    assert actions == ["after", "peek while away", "while away", "first"]
    await expect(page.locator("#denied-list .event")).to_have_count(1)
    assert subscribed[0] == {"requestId": request_id, "after": None}
    assert subscribed[-1] == {"requestId": request_id, "after": first["event"]["cursor"]}
    # The only console errors are the browser's own words for the refused sockets.
    assert all("WebSocket" in error for error in page.console_errors), page.console_errors
    assert page.page_errors == []
    assert page.offsite == []


async def test_screenshots_at_desktop_and_phone_widths(
    page: BrowserPage, live: Live, world: World
) -> None:
    await create_request(live, world)
    await create_request(live, world, resources=[DEV])
    request_id = await approved_request(live, world)
    await authorize(live, world, request_id, f"{PROD}/vm1", "read logs", {"lines": 200})
    await authorize(live, world, request_id, OUT_OF_SCOPE, "peek")
    await authorize(live, world, request_id, f"{PROD}/vm2", "restart service")

    await sign_in(page, world, "contoso-admin")
    for size, label in ((DESKTOP, "desktop"), (PHONE, "phone")):
        await page.set_viewport_size(size)
        await page.goto("/dashboard#/")
        await expect(page.locator("#pending-list .card")).to_have_count(2)
        await page.screenshot(f"{label}-requests")
        await page.goto(f"/dashboard#/requests/{request_id}")
        await expect(page.locator("#event-list .event")).to_have_count(3, timeout=LIVE)
        await page.screenshot(f"{label}-request")
        await page.goto("/dashboard#/history")
        await expect(page.locator("#history-rows tr")).to_have_count(3)
        await page.screenshot(f"{label}-history")
        await page.goto("/dashboard#/audit")
        await expect(page.locator("#audit-rows tr").first).to_be_visible()
        await page.screenshot(f"{label}-audit")
        await page.goto("/dashboard#/admin")
        await expect(page.locator("#set-maxAccessSeconds")).to_have_value("28800")
        await page.screenshot(f"{label}-admin")
        # Nothing is wider than the screen.
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{label}: {overflow}px wider than the viewport"
    page.assert_clean()
