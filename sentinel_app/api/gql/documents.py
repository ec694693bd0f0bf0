"""Parsed and validated operations, cached by their text.

Apps send the same few operations over and over; parsing and the specification's validation
rules cost about as much as running a small query, and their outcome depends only on the text
and the schema. Rules marked `per_request` (the depth/cost limits, which read the variables)
still run on every request, on the cached document.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection
from typing import Any

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, TypeInfo, parse, validate


class DocumentCache:
    """A bounded LRU of parsed documents and of their validation errors."""

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._documents: OrderedDict[str, DocumentNode] = OrderedDict()
        # Keyed by the id of a document this cache handed out (and still holds, so ids stay unique).
        self._errors: dict[int, list[GraphQLError]] = {}

    def parse(self, _context: Any, data: dict[str, Any]) -> DocumentNode:
        """Ariadne's `query_parser` hook: the document of `data["query"]` (syntax errors are raised)."""
        query = data["query"]
        with self._lock:
            document = self._documents.get(query)
            if document is not None:
                self._documents.move_to_end(query)
                return document
        document = parse(query)
        with self._lock:
            self._documents[query] = document
            while len(self._documents) > self._size:
                _, dropped = self._documents.popitem(last=False)
                self._errors.pop(id(dropped), None)
        return document

    def validate(
        self,
        schema: GraphQLSchema,
        document_ast: DocumentNode,
        rules: Collection[type[ASTValidationRule]] | None = None,
        max_errors: int | None = None,
        type_info: TypeInfo | None = None,
    ) -> list[GraphQLError]:
        """Ariadne's `query_validator` hook: cached static rules, then the per-request ones."""
        document = document_ast
        static = [r for r in rules or () if not getattr(r, "per_request", False)]
        per_request = [r for r in rules or () if getattr(r, "per_request", False)]
        with self._lock:
            cached = (
                self._errors.get(id(document))
                if self._documents.get(_text_of(document)) is document
                else None
            )
        if cached is None:
            cached = validate(schema, document, static or None, max_errors=max_errors)
            with self._lock:
                if self._documents.get(_text_of(document)) is document:
                    self._errors[id(document)] = cached
        if cached:
            return cached
        errors: list[GraphQLError] = []
        for rule in per_request:
            check = getattr(rule, "check", None)
            errors.extend(check(schema, document) if check else validate(schema, document, [rule]))
        return errors


def _text_of(document: DocumentNode) -> str:
    source = document.loc.source.body if document.loc is not None else ""
    return source
