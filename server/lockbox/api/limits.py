"""Limits on every GraphQL document, checked before any resolver runs."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import ASTValidationRule
from strawberry.extensions import AddValidationRules
from strawberry.extensions.max_aliases import create_validator as alias_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule

MAX_DEPTH = 10
MAX_ALIASES = 15
MAX_TOKENS = 2000

# Built once: the validation cache is keyed by the rule classes, so rules
# made afresh for every request (as the stock limiters do) never hit it.
_LIMIT_RULES: list[type[ASTValidationRule]] = [
    depth_rule(MAX_DEPTH, should_ignore=None),
    alias_rule(MAX_ALIASES),
]


class DocumentLimits(AddValidationRules):
    """Size, depth and alias limits on every document (one extension: each
    costs memory for as long as a subscription lives)."""

    def __init__(self) -> None:
        super().__init__(_LIMIT_RULES)

    def on_operation(self) -> Iterator[None]:
        self.execution_context.parse_options["max_tokens"] = MAX_TOKENS
        yield from super().on_operation()
