"""The fake Shopify's bulk operations: ``bulkOperationRunQuery`` run in the background, JSONL served.

As Shopify documents them (2026-10, ``BulkOperation``, "Perform bulk operations with the GraphQL
Admin API"): the mutation costs what any mutation costs (10 points) and the work itself is not
charged to the cost bucket; the query is checked before anything starts (valid against the
schema, at least one connection, at most five, nested at most two deep) and refused with a
``userErrors`` entry coded ``INVALID``; while one bulk query of the app runs on the shop, another
is refused with ``OPERATION_IN_PROGRESS``. An operation goes CREATED → RUNNING → COMPLETED (or
FAILED with an ``errorCode``, or EXPIRED) and its result is a JSONL file at ``url``: one object
per line, each connection's nodes flattened out, a nested connection's nodes carrying the
``__parentId`` of the node they belong to.

The fake executes the query itself with graphql-core, page by page over the root connection,
and writes the file to disk as it goes; the file is served from the fake's own port in chunks.
An operation takes as long as building its file takes the fake (about 10 s per 100,000 items
on the 2-core bench machine, in the fake's own process), with no delay added and none tuned:
Shopify documents no duration for a bulk query (it depends on the shop and on its load; third-
party reports range from seconds to many minutes), so ``export_seconds`` records what each run
took and the bench reports it apart from the time the cost bucket accounts for.
Test hooks: ``delay`` before an operation completes, ``fail_next`` (an errorCode for the next
operation), ``expire`` (the URL of an operation stops working), ``hold`` (operations stay
RUNNING until ``release``).
"""

from __future__ import annotations

import itertools
import json
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    IntValueNode,
    NameNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    execute,
    get_named_type,
    parse,
    validate,
)
from werkzeug.wrappers import Request, Response

from tests.fakes.shopify_inventory import FakeInventory
from tests.fakes.shopify_schema import admin_schema

PAGE = 250
MAX_CONNECTIONS = 5
MAX_DEPTH = 2
IN_PROGRESS = "A bulk query operation for this app and shop is already in progress: {id}."


@dataclass
class FakeBulkOperation:
    id: str
    query: str
    status: str = "CREATED"
    error_code: str | None = None
    object_count: int = 0
    root_object_count: int = 0
    created_at: str = ""
    completed_at: str | None = None
    path: Path | None = None
    file_size: int = 0
    expired: bool = False
    seconds: float = 0.0  # created → completed, as the fake ran it (the bench reports it)


class FakeBulk:
    """Bulk query operations of one fake shop. ``root_of`` gives the fake's other resolvers."""

    def __init__(self, inventory: FakeInventory, root_of: Callable[[], dict[str, Any]], lock: threading.Lock) -> None:
        self.inventory = inventory
        self._root_of = root_of
        self._server_lock = lock  # the fake's lock: the background run reads its state under it
        self.operations: dict[str, FakeBulkOperation] = {}
        self.started = 0  # operations accepted
        self.refused: list[str] = []  # userError codes answered
        self.downloads = 0
        self.export_seconds = 0.0  # summed over finished operations: the platform's own time
        self.delay = 0.0  # seconds an operation stays RUNNING before its file is written
        self.url_base = ""  # set by the server once it listens
        self._fail: list[str] = []
        self._release = threading.Event()
        self._release.set()
        self._numbers = itertools.count(4_100_000_001)
        self._folder = Path(tempfile.mkdtemp(prefix="fake-shopify-bulk-"))
        self._lock = threading.Lock()

    # --- test hooks -------------------------------------------------------------------------
    def fail_next(self, error_code: str) -> None:
        """The next operation FAILS with this ``errorCode`` (TIMEOUT, INTERNAL_SERVER_ERROR, …)."""
        self._fail.append(error_code)

    def hold(self) -> None:
        """Operations stay RUNNING until ``release()``."""
        self._release.clear()

    def release(self) -> None:
        self._release.set()

    def expire(self, operation_id: str) -> None:
        """Seven days passed: the operation is EXPIRED and its URL answers 403, as a signed URL does."""
        with self._lock:
            self.operations[operation_id].status = "EXPIRED"
            self.operations[operation_id].expired = True

    def wait(self, timeout: float = 30.0) -> None:
        """Until no operation is CREATED or RUNNING."""
        deadline = time.monotonic() + timeout
        while any(o.status in ("CREATED", "RUNNING") for o in self.operations.values()):
            if time.monotonic() > deadline:
                raise TimeoutError("bulk operation still running")
            time.sleep(0.01)

    # --- resolvers --------------------------------------------------------------------------
    def root(self) -> dict[str, Any]:
        return {
            "bulkOperationRunQuery": self._run_query,
            "bulkOperation": lambda _info, id: self._view(self.operations.get(id)),
            "currentBulkOperation": lambda _info, type="QUERY": self._view(self._newest()),
            "bulkOperations": self._list,
            "productVariantsCount": self._count,
        }

    def _count(self, _info: Any, query: str | None = None, limit: int | None = 10_000) -> dict[str, Any]:
        total = sum(1 for item in self.inventory.items.values() if item.sku is not None)
        if limit is not None and total > limit:
            return {"count": limit, "precision": "AT_LEAST"}
        return {"count": total, "precision": "EXACT"}

    def _run_query(self, _info: Any, query: str, groupObjects: bool) -> dict[str, Any]:
        problem = check_bulk_query(admin_schema(), query)
        if problem:
            return self._refusal("INVALID", problem, ["query"])
        with self._lock:
            running = [o for o in self.operations.values() if o.status in ("CREATED", "RUNNING")]
            if running:
                return self._refusal("OPERATION_IN_PROGRESS", IN_PROGRESS.format(id=running[0].id), None)
            operation = FakeBulkOperation(
                id=f"gid://shopify/BulkOperation/{next(self._numbers)}",
                query=query,
                created_at=_now(),
                error_code=self._fail.pop(0) if self._fail else None,
            )
            self.operations[operation.id] = operation
            self.started += 1
        threading.Thread(target=self._work, args=(operation,), daemon=True).start()
        return {"bulkOperation": self._view(operation), "userErrors": []}

    def _refusal(self, code: str, message: str, field: list[str] | None) -> dict[str, Any]:
        self.refused.append(code)
        return {"bulkOperation": None, "userErrors": [{"field": field, "message": message, "code": code}]}

    def _list(self, _info: Any, first: int | None = None, query: str | None = None, **_: Any) -> dict[str, Any]:
        wanted = _terms(query or "")
        found = [o for o in reversed(list(self.operations.values())) if _listed(o, wanted)][: first or 10]
        return {"nodes": [self._view(o) for o in found], "pageInfo": {"hasNextPage": False, "endCursor": None}}

    def _newest(self) -> FakeBulkOperation | None:
        return next(reversed(list(self.operations.values())), None)

    def _view(self, operation: FakeBulkOperation | None) -> dict[str, Any] | None:
        if operation is None:
            return None
        done = operation.status == "COMPLETED" and not operation.expired
        failed = operation.status == "FAILED" and operation.path is not None
        link = f"{self.url_base}/bulk-results/{operation.id.rsplit('/', 1)[1]}.jsonl?X-Goog-Signature=f4k3"
        return {
            "id": operation.id,
            "status": operation.status,
            "errorCode": operation.error_code if operation.status == "FAILED" else None,
            "objectCount": str(operation.object_count),
            "rootObjectCount": str(operation.root_object_count),
            "fileSize": str(operation.file_size) if done else None,
            "url": link if done else None,
            "partialDataUrl": link if failed else None,
            "query": operation.query,
            "type": "QUERY",
            "createdAt": operation.created_at,
            "completedAt": operation.completed_at,
        }

    # --- the background run -----------------------------------------------------------------
    def _work(self, operation: FakeBulkOperation) -> None:
        began = time.monotonic()
        time.sleep(0.01)
        operation.status = "RUNNING"
        path = self._folder / f"{operation.id.rsplit('/', 1)[1]}.jsonl"
        try:
            with path.open("w", encoding="utf-8") as out:
                for line in self._lines(operation):
                    out.write(json.dumps(line, separators=(",", ":")) + "\n")
        except Exception:  # a bug of the fake reads as Shopify's own failure, never as a hang
            operation.error_code = "INTERNAL_SERVER_ERROR"
            raise
        finally:
            if operation.error_code == "INTERNAL_SERVER_ERROR" and operation.status == "RUNNING":
                operation.status, operation.completed_at = "FAILED", _now()
        if self.delay:
            time.sleep(self.delay)
        self._release.wait()
        with self._lock:
            operation.path, operation.file_size = path, path.stat().st_size
            operation.completed_at = _now()
            operation.status = "FAILED" if operation.error_code else "COMPLETED"
            operation.seconds = time.monotonic() - began
            self.export_seconds += operation.seconds

    def _lines(self, operation: FakeBulkOperation) -> Iterator[dict[str, Any]]:
        """Execute the query one page of the root connection at a time, and flatten each page."""
        document = parse(operation.query)
        op = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
        root = next(s for s in op.selection_set.selections if isinstance(s, FieldNode))
        after: str | None = None
        while True:
            paged = _with_page_arguments(root, after)
            page = DocumentNode(
                definitions=(
                    OperationDefinitionNode(
                        operation=op.operation,
                        name=op.name,
                        variable_definitions=(),
                        directives=(),
                        selection_set=SelectionSetNode(selections=(paged,)),
                    ),
                )
            )
            with self._server_lock:
                result = execute(admin_schema(), page, self._root_of())
            if result.errors:
                raise RuntimeError(f"fake bulk query failed: {result.errors}")
            connection = (result.data or {})[paged.alias.value if paged.alias else paged.name.value]
            for node in _nodes(connection):
                operation.root_object_count += 1
                for line in _flatten(node, None):
                    operation.object_count += 1
                    yield line
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return
            after = info["endCursor"]

    # --- HTTP: the signed download URL ------------------------------------------------------
    def serve(self, request: Request) -> Response:
        name = request.path.rsplit("/", 1)[1].removesuffix(".jsonl")
        operation = self.operations.get(f"gid://shopify/BulkOperation/{name}")
        if operation is None or operation.path is None or operation.expired:
            return Response("<Error><Code>AccessDenied</Code></Error>", status=403, content_type="application/xml")
        self.downloads += 1
        return Response(_chunks(operation.path), content_type="application/jsonl", direct_passthrough=True)


def check_bulk_query(schema: GraphQLSchema, query: str) -> str:
    """Why Shopify would refuse this bulk query ("" when it would run it)."""
    try:
        document = parse(query)
    except GraphQLError as exc:
        return f"Invalid bulk query: {exc.message}"
    problems = validate(schema, document)
    if problems:
        return f"Invalid bulk query: {problems[0].message}"
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(ops) != 1 or ops[0].operation.value != "query":
        return "Invalid bulk query: the document must hold exactly one query"
    if ops[0].variable_definitions:
        return "Invalid bulk query: variables are not supported"
    assert schema.query_type is not None
    connections = _connections(ops[0].selection_set, schema.query_type, 0)
    if not connections:
        return "Invalid bulk query: Bulk queries must contain at least one connection."
    if len(connections) > MAX_CONNECTIONS:
        return f"Invalid bulk query: Bulk queries cannot contain more than {MAX_CONNECTIONS} connections."
    if max(connections) > MAX_DEPTH:
        return f"Invalid bulk query: Bulk queries cannot contain connections nested more than {MAX_DEPTH} deep."
    return ""


def _connections(selection_set: SelectionSetNode | None, parent: Any, depth: int) -> list[int]:
    """The nesting depth of every connection under ``selection_set`` (1 for a root connection)."""
    if selection_set is None or not isinstance(parent, GraphQLObjectType):
        return []
    found: list[int] = []
    for node in selection_set.selections:
        if not isinstance(node, FieldNode) or node.name.value.startswith("__"):
            continue
        named = get_named_type(parent.fields[node.name.value].type)
        inner = depth + 1 if named.name.endswith("Connection") else depth
        if inner > depth:
            found.append(inner)
        found.extend(_connections(node.selection_set, named, inner))
    return found


def _with_page_arguments(root: FieldNode, after: str | None) -> FieldNode:
    arguments = [a for a in root.arguments or () if a.name.value not in ("first", "after")]
    arguments.append(ArgumentNode(name=NameNode(value="first"), value=IntValueNode(value=str(PAGE))))
    if after is not None:
        arguments.append(ArgumentNode(name=NameNode(value="after"), value=StringValueNode(value=after)))
    page_info = parse("{ pageInfo { hasNextPage endCursor } }").definitions[0].selection_set.selections[0]  # type: ignore[attr-defined]
    assert root.selection_set is not None
    selections = (*root.selection_set.selections, page_info)
    return FieldNode(
        alias=root.alias,
        name=root.name,
        arguments=tuple(arguments),
        directives=root.directives,
        selection_set=SelectionSetNode(selections=selections),
    )


def _nodes(connection: dict[str, Any]) -> list[dict[str, Any]]:
    if connection.get("edges") is not None:
        return [edge["node"] for edge in connection["edges"] if edge and edge.get("node")]
    return [node for node in connection.get("nodes") or [] if node]


def _is_connection(value: Any) -> bool:
    return isinstance(value, dict) and ("edges" in value or "nodes" in value)


def _flatten(node: dict[str, Any], parent: str | None) -> Iterator[dict[str, Any]]:
    """A node as its JSONL line (nested connections removed), then its nested connections' nodes."""
    line = {key: value for key, value in node.items() if not _is_connection(value) and key != "pageInfo"}
    if parent is not None:
        line["__parentId"] = parent
    yield line
    for value in node.values():
        if _is_connection(value):
            for child in _nodes(value):
                yield from _flatten(child, node.get("id"))


def _terms(query: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for term in query.replace("(", " ").replace(")", " ").split():
        name, sep, value = term.partition(":")
        if sep:
            found.setdefault(name.lower(), set()).add(value.lower())
    return found


def _listed(operation: FakeBulkOperation, wanted: dict[str, set[str]]) -> bool:
    if "status" in wanted and operation.status.lower() not in wanted["status"]:
        return False
    return not ("operation_type" in wanted and "query" not in wanted["operation_type"])


def _chunks(path: Path, size: int = 64 * 1024) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
