"""Limits on every GraphQL document, checked before any resolver runs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    VariableNode,
    get_named_type,
)
from strawberry.extensions import AddValidationRules
from strawberry.extensions.max_aliases import create_validator as alias_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule

from lockbox.domain.cursors import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from lockbox.domain.errors import BadUserInput

MAX_DEPTH = 10
# `nodes` takes at most this many ids (contract section 10's list limit).
MAX_NODES = 100
MAX_ALIASES = 15
MAX_TOKENS = 2000


def _refusing_as_bad_input(rule: type[ASTValidationRule]) -> type[ASTValidationRule]:
    """`rule`, its errors coded BAD_USER_INPUT: a document refused by a limit
    is the caller's input refused, not a document that fails the schema
    (GRAPHQL_VALIDATION_FAILED). The stock limiters report while they are
    constructed, straight to the validation context."""

    def __init__(self: ASTValidationRule, context: ValidationContext) -> None:
        report = context.report_error

        def coded(error: GraphQLError) -> None:
            error.extensions = {**(error.extensions or {}), "code": "BAD_USER_INPUT"}
            report(error)

        context.report_error = coded  # type: ignore[method-assign]
        try:
            rule.__init__(self, context)
        finally:
            del context.report_error

    return type(rule.__name__, (rule,), {"__init__": __init__})


# Built once: the validation cache is keyed by the rule classes, so rules
# made afresh for every request (as the stock limiters do) never hit it.
_LIMIT_RULES: list[type[ASTValidationRule]] = [
    _refusing_as_bad_input(depth_rule(MAX_DEPTH, should_ignore=None)),
    _refusing_as_bad_input(alias_rule(MAX_ALIASES)),
]


class DocumentLimits(AddValidationRules):
    """Size, depth and alias limits on every document (one extension: each
    costs memory for as long as a subscription lives)."""

    def __init__(self) -> None:
        super().__init__(_LIMIT_RULES)

    def on_operation(self) -> Iterator[None]:
        self.execution_context.parse_options["max_tokens"] = MAX_TOKENS
        yield from super().on_operation()

    def on_execute(self) -> Iterator[None]:
        # Here, not in validation: the cost depends on the variables, and
        # validation results are cached per document.
        context = self.execution_context
        limit = getattr(getattr(context.context, "deps", None), "max_query_cost", 0)
        document = context.graphql_document
        if limit and document is not None:
            cost = document_cost(
                context.schema._schema, document, context.operation_name, context.variables or {}
            )
            if cost > limit:
                raise BadUserInput(
                    f"the document costs {cost}, more than the limit of {limit}: "
                    "ask for smaller pages, or fewer nested connections"
                )
        yield


# --- query cost -------------------------------------------------------------------
# Each connection field costs its page size times the cost of what it is
# nested in: `accessRequests(first: 50) { edges { node { activity(first: 200)` is
# 50 + 50 * 200. A document over the limit is refused before it runs.


def document_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any],
) -> int:
    operations = [
        d
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
        and (operation_name is None or (d.name is not None and d.name.value == operation_name))
    ]
    root = schema.get_root_type(operations[0].operation) if operations else None
    if root is None:
        return 0
    return _Costing(schema, document, variables).cost(root, operations[0].selection_set, 1)


class _Costing:
    def __init__(
        self, schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any]
    ) -> None:
        self.schema = schema
        self.variables = variables
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }

    def cost(self, parent: Parent, selections: SelectionSetNode, multiplier: int) -> int:
        total = 0
        for selection in selections.selections:
            if isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    total += self.cost(
                        self._narrowed(parent, fragment.type_condition.name.value),
                        fragment.selection_set,
                        multiplier,
                    )
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                narrowed = (
                    parent if condition is None else self._narrowed(parent, condition.name.value)
                )
                total += self.cost(narrowed, selection.selection_set, multiplier)
            elif isinstance(selection, FieldNode) and selection.selection_set is not None:
                field = parent.fields.get(selection.name.value)
                if field is None:
                    continue  # introspection
                named = get_named_type(field.type)
                inner = multiplier
                if named.name.endswith("Connection"):
                    inner = multiplier * self._page_size(selection)
                    total += inner
                elif selection.name.value == "nodes":
                    # Up to one object per id, each with whatever is nested in it.
                    inner = multiplier * self._id_count(selection)
                if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
                    total += self.cost(named, selection.selection_set, inner)
        return total

    def _narrowed(self, parent: Parent, type_name: str) -> Parent:
        found = self.schema.get_type(type_name)
        return found if isinstance(found, GraphQLObjectType | GraphQLInterfaceType) else parent

    def _id_count(self, field: FieldNode) -> int:
        """How many ids `nodes` is given (more than 100 is refused by the field)."""
        for argument in field.arguments or ():
            if argument.name.value != "ids":
                continue
            value = argument.value
            if isinstance(value, VariableNode):
                found = self.variables.get(value.name.value)
                count = len(found) if isinstance(found, list) else 1
            elif isinstance(value, ListValueNode):
                count = len(value.values)
            else:
                count = 1  # a single id stands for a list of one
            return min(max(count, 1), MAX_NODES)
        return 1

    def _page_size(self, field: FieldNode) -> int:
        """The page the field asks for, as far as a page can go: a larger one
        is refused by the field itself, with its own message. `first` or
        `last`, whichever is given (null or an unset variable is not); the
        larger if both are (the field refuses that too); 50 if neither."""
        asked: list[int] = []
        for argument in field.arguments or ():
            if argument.name.value not in ("first", "last"):
                continue
            value = argument.value
            if isinstance(value, VariableNode):
                found = self.variables.get(value.name.value)
                if isinstance(found, int):
                    asked.append(found)
            elif isinstance(value, IntValueNode):
                asked.append(int(value.value))
        return min(max(max(asked, default=DEFAULT_PAGE_SIZE), 0), MAX_PAGE_SIZE)


Parent = GraphQLObjectType | GraphQLInterfaceType
