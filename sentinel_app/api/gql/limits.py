"""Query depth and cost limits, checked during validation (before anything runs).

Depth counts nested field levels (introspection fields excluded). Cost counts one per field per
item it is resolved for: a list field multiplies the cost of everything below it by its page size
(`first`/`limit`, or the default page) or, for lists without paging, by `UNPAGED_LIST_ESTIMATE`.
A paged field returning a connection object passes its page size to the first list below it
(`edges`, `nodes`). Fragments are expanded where they are spread.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
)
from graphql.validation import ASTValidationRule, ValidationRule

from sentinel_app.api.gql.errors import VALIDATION_FAILED
from sentinel_app.api.gql.scalars import DEFAULT_PAGE

MAX_DEPTH = 10
MAX_COST = 20_000
UNPAGED_LIST_ESTIMATE = 10
_PAGE_ARGS = ("first", "limit")


class _Measure:
    """Walks one operation, expanding fragments, to find its depth and cost."""

    def __init__(
        self,
        fragments: dict[str, FragmentDefinitionNode],
        schema_types: dict[str, GraphQLNamedType],
        variables: dict[str, Any],
    ) -> None:
        self.fragments, self.types, self.variables = fragments, schema_types, variables
        self.depth = 0
        self.cost = 0

    def walk(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLNamedType | None,
        depth: int,
        multiplier: int,
        page_hint: int | None,
        spreading: frozenset[str],
    ) -> None:
        if selection_set is None or not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                self._field(selection, parent, depth, multiplier, page_hint, spreading)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.types.get(condition.name.value) if condition else parent
                self.walk(selection.selection_set, target, depth, multiplier, page_hint, spreading)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                # A cycle is reported by the standard NoFragmentCycles rule; just do not loop here.
                if fragment is None or name in spreading:
                    continue
                target = self.types.get(fragment.type_condition.name.value)
                self.walk(fragment.selection_set, target, depth, multiplier, page_hint, spreading | {name})

    def _field(
        self,
        node: FieldNode,
        parent: GraphQLObjectType | GraphQLInterfaceType,
        depth: int,
        multiplier: int,
        page_hint: int | None,
        spreading: frozenset[str],
    ) -> None:
        name = node.name.value
        if name.startswith("__"):
            return  # introspection and __typename: cheap, and its depth is fixed by the spec
        definition = parent.fields.get(name)
        if definition is None:
            return  # unknown fields are reported by the standard rules
        level = depth + 1
        self.depth = max(self.depth, level)
        self.cost += multiplier
        page = self._page_size(node, definition)
        child_multiplier, child_hint = multiplier, page_hint
        if is_list_type(get_nullable_type(definition.type)):
            child_multiplier *= page or page_hint or UNPAGED_LIST_ESTIMATE
            child_hint = None
        elif page is not None:
            child_hint = page
        self.walk(
            node.selection_set,
            get_named_type(definition.type),
            level,
            child_multiplier,
            child_hint,
            spreading,
        )

    def _page_size(self, node: FieldNode, definition: GraphQLField) -> int | None:
        if not any(arg in definition.args for arg in _PAGE_ARGS):
            return None
        for argument in node.arguments or ():
            if argument.name.value not in _PAGE_ARGS:
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                return max(1, int(value.value))
            if isinstance(value, VariableNode):
                given = self.variables.get(value.name.value)
                if isinstance(given, int) and not isinstance(given, bool):
                    return max(1, given)
        return DEFAULT_PAGE


def limits_rule(
    variables: dict[str, Any] | None, *, max_depth: int = MAX_DEPTH, max_cost: int = MAX_COST
) -> type[ASTValidationRule]:
    """A validation rule refusing operations deeper than `max_depth` or costlier than `max_cost`."""
    given = dict(variables or {})

    class QueryLimits(ValidationRule):
        # Depends on the request's variables: never cached with the document's other checks.
        per_request = True

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            for error in self.check_operation(self.context.schema, self.context.document, node):
                self.report_error(error)

        @staticmethod
        def check(schema: GraphQLSchema, document: DocumentNode) -> list[GraphQLError]:
            """The limit errors of every operation of `document` (without a full validation pass)."""
            return [
                error
                for definition in document.definitions
                if isinstance(definition, OperationDefinitionNode)
                for error in QueryLimits.check_operation(schema, document, definition)
            ]

        @staticmethod
        def check_operation(
            schema: GraphQLSchema, document: DocumentNode, node: OperationDefinitionNode
        ) -> list[GraphQLError]:
            """The limit errors of one operation."""
            root = {
                OperationType.QUERY: schema.query_type,
                OperationType.MUTATION: schema.mutation_type,
                OperationType.SUBSCRIPTION: schema.subscription_type,
            }[node.operation]
            fragments = {
                d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
            }
            measure = _Measure(fragments, schema.type_map, given)
            measure.walk(node.selection_set, root, 0, 1, None, frozenset())
            errors = []
            if measure.depth > max_depth:
                errors.append(
                    GraphQLError(
                        f"the query is {measure.depth} levels deep; at most {max_depth} are allowed",
                        node,
                        extensions={
                            "code": VALIDATION_FAILED,
                            "limit": "depth",
                            "value": measure.depth,
                            "maximum": max_depth,
                        },
                    )
                )
            if measure.cost > max_cost:
                errors.append(
                    GraphQLError(
                        f"the query would resolve about {measure.cost} fields; at most {max_cost} are allowed "
                        "(ask for smaller pages or fewer nested lists)",
                        node,
                        extensions={
                            "code": VALIDATION_FAILED,
                            "limit": "cost",
                            "value": measure.cost,
                            "maximum": max_cost,
                        },
                    )
                )
            return errors

    return QueryLimits


def validation_rules(
    max_depth: int = MAX_DEPTH, max_cost: int = MAX_COST
) -> Callable[[Any, DocumentNode, dict[str, Any]], Collection[type[ASTValidationRule]]]:
    """Ariadne's `validation_rules` hook: the limits, measured with the request's variables."""

    def rules(
        _context: Any, _document: DocumentNode, data: dict[str, Any]
    ) -> Collection[type[ASTValidationRule]]:
        variables = data.get("variables") if isinstance(data, dict) else None
        return [
            limits_rule(
                variables if isinstance(variables, dict) else None, max_depth=max_depth, max_cost=max_cost
            )
        ]

    return rules
