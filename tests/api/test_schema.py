"""The served schema: the committed SDL is current, and it keeps every promise of
the contract's schema (section 4) — names, kinds, and compatible types."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import graphql
import pytest
from graphql import (
    EnumTypeDefinitionNode,
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    InputObjectTypeDefinitionNode,
    InputValueDefinitionNode,
    ObjectTypeDefinitionNode,
    ScalarTypeDefinitionNode,
    TypeDefinitionNode,
    Undefined,
    get_named_type,
    is_list_type,
    is_non_null_type,
    is_type_sub_type_of,
    type_from_ast,
    value_from_ast,
)

from lockbox.api.schema import build_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "schema" / "schema.graphql"
# The public contract (v1), section 4 "Schema", verbatim: the core every
# client may rely on. The served schema may add to it, never take away.
CONTRACT_SDL = """\
scalar DateTime   # ISO-8601 with offset
scalar JSON

enum Role { TENANT_ADMIN APPROVER AUDITOR ENGINEER SUPPORT_MANAGER OPERATOR_ADMIN }

enum AccessRequestStatus {
  PENDING    # waiting for the customer's decision until expiresAt
  APPROVED   # access window open: accessStartsAt <= now < accessEndsAt
  DENIED     # a customer approver said no
  EXPIRED    # nobody decided before expiresAt
  REVOKED    # a customer approver ended the access early
  COMPLETED  # the access window elapsed, or the engineer released it
  CANCELED   # the engineer withdrew it while pending
}

type Tenant { id: ID!  name: String!  lockboxEnabled: Boolean!  resourceRoots: [String!]!  settings: LockboxSettings! }
type LockboxSettings { pendingRequestTtlSeconds: Int!  defaultAccessSeconds: Int!  maxAccessSeconds: Int! }
type Principal { id: ID!  name: String!  email: String  role: Role!  tenant: Tenant  scopes: [String!]! }
type SupportTicket { id: ID!  title: String!  tenant: Tenant! }

type AccessRequest {
  id: ID!
  tenant: Tenant!
  ticket: SupportTicket!
  engineer: Principal!
  resources: [String!]!
  justification: String!
  durationSeconds: Int!
  status: AccessRequestStatus!
  createdAt: DateTime!
  expiresAt: DateTime!          # the pending deadline
  decidedAt: DateTime
  decidedBy: Principal
  decisionReason: String
  accessStartsAt: DateTime
  accessEndsAt: DateTime
  activity(first: Int = 50, after: String): ActivityEventConnection!
}

type ActivityEvent {
  id: ID!
  cursor: String!               # opaque; strictly increasing within a request
  at: DateTime!
  request: AccessRequest!
  engineer: Principal!
  resource: String!
  action: String!
  allowed: Boolean!
  denialReason: String          # set when allowed is false
  detail: JSON
}

type AccessDecision { allowed: Boolean!  reason: String  event: ActivityEvent! }

type AuditEvent { id: ID!  at: DateTime!  action: String!  actor: Principal  requestId: ID  detail: JSON  hash: String!  prevHash: String }

# Relay-style connections: AccessRequestConnection, ActivityEventConnection, AuditEventConnection
#   { edges { cursor node { … } }  pageInfo { hasNextPage endCursor } }

type Query {
  me: Principal!
  pendingRequests(first: Int = 50, after: String): AccessRequestConnection!
  accessRequests(status: [AccessRequestStatus!], first: Int = 50, after: String): AccessRequestConnection!
  accessRequest(id: ID!): AccessRequest          # null when missing or not visible
  auditLog(first: Int = 50, after: String): AuditEventConnection!
}

input CreateAccessRequestInput { ticketId: ID!  resources: [String!]!  justification: String!  durationSeconds: Int }
input AuthorizeAccessInput { requestId: ID!  resource: String!  action: String!  detail: JSON }
input LockboxSettingsInput { pendingRequestTtlSeconds: Int  defaultAccessSeconds: Int  maxAccessSeconds: Int }

type Mutation {
  createAccessRequest(input: CreateAccessRequestInput!): AccessRequest!   # ENGINEER
  cancelAccessRequest(id: ID!): AccessRequest!                            # the request's engineer, while PENDING
  releaseAccess(id: ID!): AccessRequest!                                  # the request's engineer, while APPROVED -> COMPLETED
  approveRequest(id: ID!, reason: String): AccessRequest!                 # customer deciders
  denyRequest(id: ID!, reason: String): AccessRequest!                    # customer deciders
  revokeAccess(id: ID!, reason: String): AccessRequest!                   # customer deciders, while APPROVED -> REVOKED
  authorizeAccess(input: AuthorizeAccessInput!): AccessDecision!          # the request's engineer
  setLockboxEnabled(enabled: Boolean!): Tenant!                           # TENANT_ADMIN
  updateLockboxSettings(input: LockboxSettingsInput!): Tenant!            # TENANT_ADMIN
}

type Subscription {
  engineerActivity(requestId: ID!, after: String): ActivityEvent!
  accessRequestUpdates: AccessRequest!
}
"""  # noqa: E501

# The connections the contract describes in a comment, and their node types.
CONNECTIONS = {
    "AccessRequestConnection": "AccessRequest",
    "ActivityEventConnection": "ActivityEvent",
    "AuditEventConnection": "AuditEvent",
}

CONTRACT = graphql.parse(CONTRACT_SDL)
DEFINITIONS: dict[str, TypeDefinitionNode] = {
    d.name.value: d for d in CONTRACT.definitions if isinstance(d, TypeDefinitionNode)
}
SERVED: GraphQLSchema = graphql.build_schema(build_schema().as_str())


def served_type(name: str) -> GraphQLNamedType:
    found = SERVED.get_type(name)
    assert found is not None, f"the served schema has no type {name}"
    return found


def contract_type(node: Any, where: str) -> Any:
    """A contract type reference, resolved against the served schema's types."""
    resolved = type_from_ast(SERVED, node)
    assert resolved is not None, f"{where}: the served schema lacks {graphql.print_ast(node)}"
    return resolved


def default_of(value: GraphQLArgument | GraphQLInputField) -> Any:
    node = value.ast_node
    if node is not None and node.default_value is not None:
        return value_from_ast(node.default_value, value.type)
    return value.default_value


def check_inputs(
    where: str,
    promised: tuple[InputValueDefinitionNode, ...],
    served: dict[str, GraphQLArgument] | dict[str, GraphQLInputField],
) -> None:
    """Every promised argument or input field is accepted as promised, and
    nothing new is required of existing clients."""
    for node in promised:
        name = node.name.value
        assert name in served, f"{where} lost {name}"
        expected = contract_type(node.type, f"{where}.{name}")
        # Whatever a client may send under the contract, the server accepts.
        assert is_type_sub_type_of(SERVED, expected, served[name].type), (
            f"{where}.{name}: contract {expected}, served {served[name].type}"
        )
        if node.default_value is not None:
            promised_default = value_from_ast(node.default_value, expected)
            assert default_of(served[name]) == promised_default, f"{where}.{name} default"
    promised_names = {node.name.value for node in promised}
    for name, value in served.items():
        if name not in promised_names:
            required = is_non_null_type(value.type) and default_of(value) is Undefined
            assert not required, f"{where} added a required {name}"


@pytest.mark.parametrize("name", list(DEFINITIONS))
def test_served_schema_keeps_the_contracts_type(name: str) -> None:
    node = DEFINITIONS[name]
    served = served_type(name)

    if isinstance(node, ScalarTypeDefinitionNode):
        assert isinstance(served, GraphQLScalarType)
    elif isinstance(node, EnumTypeDefinitionNode):
        assert isinstance(served, GraphQLEnumType)
        promised = {value.name.value for value in node.values or ()}
        assert promised <= set(served.values), f"{name} lost {promised - set(served.values)}"
    elif isinstance(node, InputObjectTypeDefinitionNode):
        assert isinstance(served, GraphQLInputObjectType)
        check_inputs(name, node.fields or (), served.fields)
    else:
        assert isinstance(node, ObjectTypeDefinitionNode)
        assert isinstance(served, GraphQLObjectType)
        for field in node.fields or ():
            where = f"{name}.{field.name.value}"
            assert field.name.value in served.fields, f"{where} is missing"
            actual = served.fields[field.name.value]
            expected = contract_type(field.type, where)
            # What a client was promised to read, it still reads.
            assert is_type_sub_type_of(SERVED, actual.type, expected), (
                f"{where}: contract {expected}, served {actual.type}"
            )
            check_inputs(where, field.arguments or (), actual.args)


@pytest.mark.parametrize(("connection", "node"), list(CONNECTIONS.items()))
def test_connections_have_the_relay_shape(connection: str, node: str) -> None:
    served = served_type(connection)
    assert isinstance(served, GraphQLObjectType)
    edges = served.fields["edges"].type
    assert is_list_type(edges.of_type if is_non_null_type(edges) else edges)
    edge = get_named_type(edges)
    assert isinstance(edge, GraphQLObjectType)
    assert get_named_type(edge.fields["cursor"].type).name == "String"
    assert get_named_type(edge.fields["node"].type).name == node
    page_info = get_named_type(served.fields["pageInfo"].type)
    assert isinstance(page_info, GraphQLObjectType)
    assert str(page_info.fields["hasNextPage"].type) == "Boolean!"
    assert get_named_type(page_info.fields["endCursor"].type).name == "String"


def test_contract_operations_are_the_served_roots() -> None:
    roots = {"Query": SERVED.query_type, "Mutation": SERVED.mutation_type}
    roots["Subscription"] = SERVED.subscription_type
    counts: dict[str, int] = {}
    for name, root in roots.items():
        assert root is not None and root.name == name
        promised = DEFINITIONS[name]
        assert isinstance(promised, ObjectTypeDefinitionNode)
        operations = {f.name.value for f in promised.fields or ()}
        assert operations <= set(root.fields), f"{name} lost {operations - set(root.fields)}"
        counts[name] = len(operations)
    # The copy above is whole: every operation the contract lists.
    assert counts == {"Query": 5, "Mutation": 9, "Subscription": 2}


def test_committed_schema_file_is_current() -> None:
    committed = SCHEMA_FILE.read_text()

    assert committed == build_schema().as_str() + "\n", (
        "schema/schema.graphql is stale: run `make schema`"
    )
