"""Who sees a request, who decides it, and the role checks (contract section 5)."""

from __future__ import annotations

import pytest

from lockbox.domain.errors import Forbidden
from lockbox.domain.lifecycle import Party
from lockbox.domain.policy import (
    Actor,
    RequestFacts,
    Role,
    can_decide,
    can_read_audit,
    can_see,
    require_decider,
    require_own_engineer,
    require_party,
    require_role,
)

CONTOSO = "tenant-contoso"
FABRIKAM = "tenant-fabrikam"
PROD = "/subscriptions/contoso-prod"
DEV = "/subscriptions/contoso-dev"

# A contoso request by engineer alice touching one prod and one dev resource.
REQUEST = RequestFacts(
    id="req-1",
    tenant_id=CONTOSO,
    engineer_id="alice",
    resources=(f"{PROD}/resourceGroups/rg1", f"{DEV}/resourceGroups/rg2"),
)


def actor(
    id_: str, role: Role, tenant_id: str | None = None, scopes: tuple[str, ...] = ()
) -> Actor:
    return Actor(id=id_, name=id_, role=role, tenant_id=tenant_id, scopes=scopes)


# (actor, sees REQUEST, decides REQUEST)
CASES: list[tuple[Actor, bool, bool]] = [
    # TENANT_ADMIN: whole tenant, decides; another tenant's admin sees nothing.
    (actor("contoso-admin", Role.TENANT_ADMIN, CONTOSO), True, True),
    (actor("fabrikam-admin", Role.TENANT_ADMIN, FABRIKAM), False, False),
    (actor("admin-no-tenant", Role.TENANT_ADMIN, None), False, False),
    # AUDITOR: whole tenant, read only.
    (actor("contoso-auditor", Role.AUDITOR, CONTOSO), True, False),
    (actor("contoso-auditor-scoped", Role.AUDITOR, CONTOSO, (PROD, DEV)), True, False),
    (actor("fabrikam-auditor", Role.AUDITOR, FABRIKAM), False, False),
    # APPROVER: only when its scopes cover every resource.
    (actor("approver-all", Role.APPROVER, CONTOSO, (PROD, DEV)), True, True),
    (actor("approver-subscriptions", Role.APPROVER, CONTOSO, ("/subscriptions",)), True, True),
    (
        actor("approver-exact", Role.APPROVER, CONTOSO, REQUEST.resources),
        True,
        True,
    ),
    (actor("approver-prod-only", Role.APPROVER, CONTOSO, (PROD,)), False, False),
    (actor("approver-dev-only", Role.APPROVER, CONTOSO, (DEV,)), False, False),
    (
        actor("approver-unrelated", Role.APPROVER, CONTOSO, ("/subscriptions/contoso-test",)),
        False,
        False,
    ),
    (
        actor("approver-lookalike", Role.APPROVER, CONTOSO, (f"{PROD}2", f"{DEV}2")),
        False,
        False,
    ),
    (
        actor(
            "approver-too-deep",
            Role.APPROVER,
            CONTOSO,
            (f"{PROD}/resourceGroups/rg1/vm", f"{DEV}/resourceGroups/rg2/vm"),
        ),
        False,
        False,
    ),
    (actor("approver-no-scopes", Role.APPROVER, CONTOSO, ()), False, False),
    (actor("fabrikam-approver-covering", Role.APPROVER, FABRIKAM, (PROD, DEV)), False, False),
    # ENGINEER: its own requests only, never decides.
    (actor("alice", Role.ENGINEER), True, False),
    (actor("bob", Role.ENGINEER), False, False),
    (actor("bob-with-tenant", Role.ENGINEER, CONTOSO, (PROD, DEV)), False, False),
    # Operator oversight: sees everything, decides nothing.
    (actor("support-manager", Role.SUPPORT_MANAGER), True, False),
    (actor("support-manager-in-tenant", Role.SUPPORT_MANAGER, CONTOSO, (PROD, DEV)), True, False),
    (actor("operator-admin", Role.OPERATOR_ADMIN), True, False),
    (actor("operator-admin-in-tenant", Role.OPERATOR_ADMIN, CONTOSO, (PROD, DEV)), True, False),
    # Nobody decides their own request, whatever their role.
    (actor("alice", Role.TENANT_ADMIN, CONTOSO), True, False),
    (actor("alice", Role.APPROVER, CONTOSO, (PROD, DEV)), True, False),
]


def test_policy_table_exercises_every_role() -> None:
    assert {a.role for a, _, _ in CASES} == set(Role)
    assert [r.value for r in Role] == [
        "TENANT_ADMIN",
        "APPROVER",
        "AUDITOR",
        "ENGINEER",
        "SUPPORT_MANAGER",
        "OPERATOR_ADMIN",
    ]


@pytest.mark.parametrize(
    ("who", "sees"), [(a, s) for a, s, _ in CASES], ids=[a.id + "-" + a.role for a, _, _ in CASES]
)
def test_who_sees_the_request(who: Actor, sees: bool) -> None:
    assert can_see(who, REQUEST) is sees


@pytest.mark.parametrize(
    ("who", "decides"),
    [(a, d) for a, _, d in CASES],
    ids=[a.id + "-" + a.role for a, _, _ in CASES],
)
def test_who_decides_the_request(who: Actor, decides: bool) -> None:
    assert can_decide(who, REQUEST) is decides


@pytest.mark.parametrize(
    "who", [a for a, _, d in CASES if d], ids=[a.id + "-" + a.role for a, _, d in CASES if d]
)
def test_require_decider_lets_deciders_through(who: Actor) -> None:
    require_decider(who, REQUEST, "approve")


@pytest.mark.parametrize(
    "who",
    [a for a, _, d in CASES if not d],
    ids=[a.id + "-" + a.role for a, _, d in CASES if not d],
)
def test_require_decider_refuses_everyone_else_with_forbidden(who: Actor) -> None:
    with pytest.raises(Forbidden) as caught:
        require_decider(who, REQUEST, "approve")
    assert caught.value.extensions == {"code": "FORBIDDEN"}
    assert who.name in caught.value.message
    assert REQUEST.id in caught.value.message
    assert "approve" in caught.value.message


def test_anyone_who_decides_can_also_see() -> None:
    for who, _, _ in CASES:
        if can_decide(who, REQUEST):
            assert can_see(who, REQUEST), who


def test_approver_sees_a_single_resource_request_in_its_scope_but_not_one_outside() -> None:
    prod_approver = actor("approver-prod", Role.APPROVER, CONTOSO, (PROD,))
    inside = RequestFacts("r2", CONTOSO, "alice", (f"{PROD}/x",))
    outside = RequestFacts("r3", CONTOSO, "alice", (f"{PROD}2/x",))
    assert can_see(prod_approver, inside) and can_decide(prod_approver, inside)
    assert not can_see(prod_approver, outside) and not can_decide(prod_approver, outside)


def test_approver_with_scopes_never_sees_a_request_without_resources() -> None:
    approver = actor("approver", Role.APPROVER, CONTOSO, (PROD,))
    empty = RequestFacts("r4", CONTOSO, "alice", ())
    assert not can_see(approver, empty)
    assert not can_decide(approver, empty)


def test_require_own_engineer_accepts_the_requester_only() -> None:
    require_own_engineer(actor("alice", Role.ENGINEER), REQUEST, "cancel")
    with pytest.raises(Forbidden, match="only the requesting engineer may cancel request req-1"):
        require_own_engineer(actor("bob", Role.ENGINEER), REQUEST, "cancel")
    with pytest.raises(Forbidden):
        require_own_engineer(actor("operator-admin", Role.OPERATOR_ADMIN), REQUEST, "release")


def test_require_role_accepts_listed_roles() -> None:
    require_role(actor("e", Role.ENGINEER), {Role.ENGINEER}, "createAccessRequest")
    require_role(
        actor("a", Role.TENANT_ADMIN, CONTOSO),
        frozenset({Role.TENANT_ADMIN, Role.AUDITOR}),
        "auditLog",
    )


def test_require_role_refusal_names_the_operation_needed_role_and_actual_role() -> None:
    with pytest.raises(Forbidden) as caught:
        require_role(
            actor("contoso-auditor", Role.AUDITOR, CONTOSO),
            {Role.TENANT_ADMIN},
            "setLockboxEnabled",
        )
    message = caught.value.message
    assert "setLockboxEnabled" in message
    assert "TENANT_ADMIN" in message
    assert "AUDITOR" in message
    assert "contoso-auditor" in message


@pytest.mark.parametrize(
    ("role", "reads"),
    [
        (Role.TENANT_ADMIN, True),
        (Role.AUDITOR, True),
        (Role.APPROVER, False),
        (Role.ENGINEER, False),
        (Role.SUPPORT_MANAGER, False),
        (Role.OPERATOR_ADMIN, False),
    ],
    ids=str,
)
def test_audit_log_is_read_by_tenant_admins_and_auditors(role: Role, reads: bool) -> None:
    assert can_read_audit(actor("x", role, CONTOSO)) is reads


@pytest.mark.parametrize("party", [Party.CLOCK, Party.LOCKBOX], ids=str)
def test_nobody_acts_for_the_clock_or_lockbox(party: Party) -> None:
    request = RequestFacts("req-1", CONTOSO, "eng-1", ("/subscriptions/contoso-prod",))
    require_party(None, request, party, "expire")
    with pytest.raises(Forbidden, match="that is for the"):
        require_party(actor("admin", Role.TENANT_ADMIN, CONTOSO), request, party, "expire")


@pytest.mark.parametrize("party", [Party.DECIDER, Party.ENGINEER], ids=str)
def test_people_s_actions_need_a_person(party: Party) -> None:
    request = RequestFacts("req-1", CONTOSO, "eng-1", ("/subscriptions/contoso-prod",))
    with pytest.raises(Forbidden):
        require_party(None, request, party, "approve")
