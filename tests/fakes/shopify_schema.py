"""Shopify's own GraphQL Admin schema (2026-10), and the query cost as Shopify roughly prices it.

The schema is Shopify's introspection JSON, vendored in ``vendor/shopify`` (see its README for
where it came from). Loaded once per process.
"""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_client_schema,
    get_named_type,
    get_nullable_type,
    is_leaf_type,
    value_from_ast_untyped,
)
from graphql.language import DocumentNode

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "vendor" / "shopify" / "shopify-admin-2026-10.json.gz"
MAX_QUERY_COST = 1000  # Shopify refuses a single query whose requested cost exceeds this
MUTATION_COST = 10


@functools.cache
def admin_schema() -> GraphQLSchema:
    with gzip.open(SCHEMA_PATH) as handle:
        schema = build_client_schema(json.load(handle)["data"])
    # Shopify's schema breaks a graphql-core rule on deprecated interface fields: skip the
    # schema's self-check (contracts/README.md), never the validation of documents against it.
    schema._validation_errors = []
    return schema


def requested_cost(document: DocumentNode, variables: dict[str, Any] | None = None) -> int:
    """Requested cost of the document's operation: objects 1, connections 2 + first × node,
    sized lists first × item, scalars 0, each mutation root field 10."""
    schema = admin_schema()
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    total = 0
    for op in document.definitions:
        if not isinstance(op, OperationDefinitionNode):
            continue
        if op.operation.value == "mutation":
            total += MUTATION_COST * len(op.selection_set.selections)
        else:
            assert schema.query_type is not None
            total += _selection_cost(op.selection_set, schema.query_type, variables or {}, fragments, 1)
    return total


def _fields(selection_set: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode]) -> list[FieldNode]:
    found: list[FieldNode] = []
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            found.append(sel)
        elif isinstance(sel, InlineFragmentNode):
            found.extend(_fields(sel.selection_set, fragments))
        elif isinstance(sel, FragmentSpreadNode):
            found.extend(_fields(fragments[sel.name.value].selection_set, fragments))
    return found


def _selection_cost(
    selection_set: SelectionSetNode | None,
    parent: Any,
    variables: dict[str, Any],
    fragments: dict[str, FragmentDefinitionNode],
    list_size: int,
) -> int:
    if selection_set is None or not isinstance(parent, GraphQLObjectType):
        return 0
    total = 0
    for node in _fields(selection_set, fragments):
        if node.name.value.startswith("__"):
            continue
        field_def = parent.fields[node.name.value]
        named = get_named_type(field_def.type)
        if is_leaf_type(named):
            continue
        args = {a.name.value: value_from_ast_untyped(a.value, variables) for a in node.arguments or ()}
        size = args.get("first") or args.get("last")
        if named.name.endswith("Connection"):
            total += 2 + _selection_cost(node.selection_set, named, variables, fragments, size or 1)
        elif isinstance(get_nullable_type(field_def.type), GraphQLList):
            n = size or list_size
            total += n * (1 + _selection_cost(node.selection_set, named, variables, fragments, 1))
        else:
            total += 1 + _selection_cost(node.selection_set, named, variables, fragments, 1)
    return total
