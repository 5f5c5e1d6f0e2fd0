"""Who may call each mutation, declared next to it (as Saleor does).

`@mutation(roles=..., who=..., description=...)` puts the callers into the
field's description, so they show in the SDL and in GraphiQL, and into the
field's metadata, where `declared_callers` reads them back.

The declaration describes; it does not enforce. The services enforce the
rules in full (domain.policy), including the finer ones a role cannot
express: the request's own engineer, an approver whose scopes cover the
request. A role check here, before the service, would also answer FORBIDDEN
where the contract wants NOT_FOUND: a caller who cannot see a request must
not learn that it exists. tests/api/test_mutation_roles.py checks each
declaration against who actually succeeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import strawberry
from strawberry.types import get_object_definition
from strawberry.utils.str_converters import to_camel_case

from lockbox.domain.policy import Role

# The key of the declaration in a field's metadata.
CALLERS = "lockbox.callers"


@dataclass(frozen=True, slots=True)
class Callers:
    """The roles that may call a mutation; `who` narrows them, in words."""

    roles: tuple[Role, ...]
    who: str | None = None

    def describe(self) -> str:
        roles = ", ".join(role.value for role in self.roles)
        return f"Callers: {roles} ({self.who})." if self.who else f"Callers: {roles}."


def mutation(*, roles: Sequence[Role], description: str, who: str | None = None) -> Any:
    """`strawberry.mutation`, with the roles that may call it declared."""
    callers = Callers(tuple(roles), who)
    return strawberry.mutation(
        description=f"{description}\n{callers.describe()}", metadata={CALLERS: callers}
    )


def declared_callers(root: type) -> dict[str, Callers]:
    """The declared callers of each field of `root`, by GraphQL field name."""
    definition = get_object_definition(root, strict=True)
    return {
        field.graphql_name or to_camel_case(field.python_name): field.metadata[CALLERS]
        for field in definition.fields
        if CALLERS in field.metadata
    }
