"""The console and the approval policy (contract section 8), in Chromium
against a real server: approvals so far, narrowing an approval, and
emergency access set apart with its review."""

from __future__ import annotations

from datetime import datetime

from playwright.async_api import expect

from tests.api.helpers import CREATE, JUSTIFICATION, PROD, read_request
from tests.browser.conftest import BrowserPage
from tests.browser.test_console import LIVE, card, sign_in
from tests.conftest import Live, World

POLICY = """
mutation($input: LockboxSettingsInput!) { updateLockboxSettings(input: $input) { name } }
"""
GRANTED = """
query($id: ID!) { accessRequest(id: $id) { grantedResources approvals { approver { name } } } }
"""


async def create(live: Live, world: World, **extra: object) -> str:
    payload = {
        "ticketId": world.ticket("contoso"),
        "resources": [PROD],
        "justification": JUSTIFICATION,
        **extra,
    }
    data = await live.http.data(world.token("engineer-alice"), CREATE, input=payload)
    return str(data["createAccessRequest"]["id"])


async def test_an_approver_narrows_one_of_two_approvals_and_reviews_emergency_access(
    page: BrowserPage, live: Live, world: World
) -> None:
    admin = world.token("contoso-admin")
    await live.http.data(
        admin, POLICY, input={"requiredApprovals": 2, "allowEmergencyAccess": True}
    )
    request_id = await create(live, world, durationSeconds=3600)
    await sign_in(page, world, "contoso-approver-prod")

    pending = card(page, "pending-list", request_id)
    await expect(pending.locator(".approvals-count")).to_have_text("0 of 2 approvals")
    await pending.locator("details.narrow summary").click()
    await pending.locator('input[name="durationSeconds"]').fill("600")
    await pending.locator('textarea[name="resources"]').fill(f"{PROD}/vm1")
    await pending.locator("input.reason").fill("vm1 is enough")
    await pending.locator('button[data-action="approve"]').click()

    await expect(page.locator("#notice")).to_contain_text("1 of 2 approvals", timeout=LIVE)
    await expect(pending.locator(".approvals-count")).to_have_text("1 of 2 approvals")
    await expect(pending.locator(".approvals")).to_contain_text("contoso-approver-prod")
    await expect(pending.locator(".approvals")).to_contain_text("10 min")
    await expect(pending.locator(".approvals")).to_contain_text("vm1 is enough")
    # The same approver cannot count twice: the server says so, beside the button.
    await pending.locator('button[data-action="approve"]').click()
    await expect(pending.locator(".inline-error")).to_contain_text("INVALID_STATE", timeout=LIVE)

    # The admin's approval completes the quorum; the window opens, narrowed.
    body = await live.http.call(
        admin, "mutation($id: ID!) { approveRequest(id: $id) { status } }", id=request_id
    )
    assert body["data"]["approveRequest"]["status"] == "APPROVED", body
    window = card(page, "open-list", request_id)
    await expect(window.locator(".granted")).to_contain_text(f"{PROD}/vm1", timeout=LIVE)
    request = await read_request(live, world, request_id)
    assert request is not None
    opened = datetime.fromisoformat(request["accessStartsAt"])
    ends = datetime.fromisoformat(request["accessEndsAt"])
    assert (ends - opened).total_seconds() == 600
    granted = await live.http.data(admin, GRANTED, id=request_id)
    assert granted["accessRequest"] == {
        "grantedResources": [f"{PROD}/vm1"],
        "approvals": [
            {"approver": {"name": "contoso-approver-prod"}},
            {"approver": {"name": "contoso-admin"}},
        ],
    }

    # Break-glass access arrives live, set apart from everything else.
    panel = page.locator("#emergency-panel")
    await expect(panel).to_be_hidden()
    emergency_id = await create(live, world, emergency=True)
    emergency = card(page, "emergency-list", emergency_id)
    await expect(emergency).to_contain_text("Emergency", timeout=LIVE)
    await expect(panel).to_be_visible()
    await expect(page.locator("#emergency-count")).to_have_text("1")
    await page.screenshot(label="emergency")
    await emergency.locator("input.reason").fill("no incident on record")
    await emergency.locator('button[data-action="reject"]').click()

    await expect(panel).to_be_hidden(timeout=LIVE)
    await expect(page.locator("#notice")).to_contain_text("access revoked")
    revoked = await read_request(live, world, emergency_id)
    assert revoked is not None and revoked["status"] == "REVOKED"
    page.assert_clean()


POLICY_READ = """
{ me { tenant { settings { requiredApprovals allowEmergencyAccess emergencyMaxSeconds } } } }
"""


async def test_an_admin_sets_the_approval_policy_in_the_settings_form(
    page: BrowserPage, live: Live, world: World
) -> None:
    await sign_in(page, world, "contoso-admin", "/dashboard#/admin")
    await expect(page.locator("#set-requiredApprovals")).to_have_value("1")
    await expect(page.locator("#set-allowEmergencyAccess")).not_to_be_checked()

    await page.locator("#set-emergencyMaxSeconds").fill("30")
    await page.locator("#settings-save").click()
    await expect(page.locator("#err-emergencyMaxSeconds")).to_contain_text("emergencyMaxSeconds")

    await page.locator("#set-emergencyMaxSeconds").fill("900")
    await page.locator("#set-requiredApprovals").fill("3")
    await page.locator("#set-allowEmergencyAccess").check()
    await page.locator("#settings-save").click()
    await expect(page.locator("#notice")).to_contain_text("Settings saved")
    await expect(page.locator("#hint-emergencyMaxSeconds")).to_have_text("= 15 min")
    settings = await live.http.data(world.token("contoso-admin"), POLICY_READ)
    assert settings["me"]["tenant"]["settings"] == {
        "requiredApprovals": 3,
        "allowEmergencyAccess": True,
        "emergencyMaxSeconds": 900,
    }
    page.assert_clean()
