"""A fake Shopify GraphQL Admin endpoint on a real port, behaving like the documented API.

Every document is parsed and validated against Shopify's own 2026-10 schema (a validation error
is answered as Shopify does: HTTP 200 with ``errors``), then *executed* by graphql-core against
that schema over this fake's orders, so selection sets, argument types and input coercion are
the real ones. The cost bucket is enforced (``THROTTLED`` when short, ``MAX_COST_EXCEEDED`` over
1000) and every answer carries ``extensions.cost``. Faults (429, 5xx, lost answers, delays) are
queued by tests. Orders hold fulfilment orders per location and fulfilments with tracking.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, execute, parse, validate
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.fakes.shopify_bulk import FakeBulk
from tests.fakes.shopify_fulfilment import FakeOrder, FakeState
from tests.fakes.shopify_fulfilment_orders import FakeServices
from tests.fakes.shopify_inventory import FakeInventory
from tests.fakes.shopify_locations import FakeLocations
from tests.fakes.shopify_oauth import FakeOAuth
from tests.fakes.shopify_orders import FakeOrderList
from tests.fakes.shopify_schema import MAX_QUERY_COST, admin_schema, requested_cost

DEFAULT_TOKEN = "shpat_test"
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"


@dataclass
class Fault:
    """What the next request meets. ``status`` 0: only ``delay``, then a normal answer."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    execute_first: bool = False  # run the document, then lose the answer (the outcome is unknown)
    delay: float = 0.0
    body: Any = None  # answered instead of a generic error body


class FakeShopifyAdmin:
    """State, bucket and counters of one fake shop backend; ``start()`` serves it on 127.0.0.1."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, restore_rate: float = 100.0, maximum: float = 1000.0) -> None:
        self.token = token
        self.version = "2026-10"
        self.state = FakeState()
        self.oauth = FakeOAuth()  # install side: authorize, token endpoint, webhook subscriptions
        self.inventory = FakeInventory()  # items, levels per location, inventorySetQuantities
        self.services = FakeServices(self.state)  # fulfilment services, the request handshake
        self.places = FakeLocations()  # the shop's locations, and each order's risk assessments
        self.maximum = maximum
        self.restore_rate = restore_rate
        self._available = maximum
        self._at = time.monotonic()
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.orders = FakeOrderList(self.state, self._lock)  # orders(query:) and the fields reconciliation reads
        self.bulk = FakeBulk(self.inventory, self._resolvers, self._lock)  # bulkOperationRunQuery, JSONL served
        self.requests = 0
        self.throttled = 0
        self.points_spent = 0  # actual cost charged, summed
        self.operations: Counter[str] = Counter()  # root field name → calls executed
        self.shops: list[str] = []  # the path segment before /admin/api, per request
        self.versions: list[str] = []
        self._server: Any = None

    # --- test hooks -------------------------------------------------------------------------
    def add_order(self, order_id: int, lines: list[tuple[str, int, str]], name: str = "#1001") -> FakeOrder:
        """An order whose lines ``(sku, quantity, location GID)`` are routed to one FO per location."""
        with self._lock:
            return self.state.add_order(order_id, lines, name)

    def cancel_fulfilment(self, fulfilment_id: str) -> None:
        """The merchant cancels a fulfilment: its units are open again on their FOs."""
        with self._lock:
            self.state.cancel_fulfilment(fulfilment_id)

    def set_available(self, points: float) -> None:
        """Drain (or fill) the cost bucket, as if other apps' calls had spent it."""
        with self._lock:
            self._available, self._at = points, time.monotonic()

    def fail_next(self, status: int, *, count: int = 1, headers: dict[str, str] | None = None, **kw: Any) -> None:
        with self._lock:
            self._faults.extend(Fault(status, dict(headers or {}), **kw) for _ in range(count))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> FakeShopifyAdmin:
        admin_schema()  # load before serving: the first request should not pay for it
        self._server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.bulk.url_base = self.url
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- HTTP -------------------------------------------------------------------------------
    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self._handle(Request(environ))(environ, start_response)

    def _handle(self, request: Request) -> Response:
        prefix, sep, rest = request.path.partition("/admin/api/")
        if request.path.startswith("/bulk-results/") and request.method == "GET":
            return self.bulk.serve(request)  # the signed storage URL of a bulk operation's result
        if "/admin/oauth/" in request.path:
            return self.oauth.handle(request, request.path.partition("/admin/oauth/")[0].strip("/"))
        version, _, tail = rest.partition("/")
        if request.method != "POST" or not sep or tail != "graphql.json":
            return Response("Not Found", status=404)
        token = request.headers.get("X-Shopify-Access-Token")
        if token != self.token and not self.oauth.accepts(token):
            return _json({"errors": INVALID_TOKEN}, 401)
        with self._lock:
            self.requests += 1
            self.shops.append(prefix.strip("/"))
            self.versions.append(version)
            fault = self._faults.pop(0) if self._faults else None
        if fault and fault.delay:
            time.sleep(fault.delay)
        if fault and not fault.status:
            fault = None
        if fault and not fault.execute_first:
            return _json(fault.body or {"errors": f"fault {fault.status}"}, fault.status, fault.headers)
        try:
            body = json.loads(request.get_data())
        except ValueError:
            return _json({"errors": [{"message": "Invalid JSON in request body"}]}, 400)
        answer = self._answer(
            str(body.get("query") or ""), body.get("variables") or {}, body.get("operationName"), prefix.strip("/")
        )
        if fault:  # executed, but the client never sees the answer
            return _json(fault.body or {"errors": f"fault {fault.status}"}, fault.status, fault.headers)
        return _json(answer, 200)

    # --- GraphQL ----------------------------------------------------------------------------
    def _answer(
        self, query: str, variables: dict[str, Any], operation_name: str | None, shop: str = ""
    ) -> dict[str, Any]:
        schema = admin_schema()
        try:
            document = parse(query)
        except GraphQLError as exc:
            return {"errors": [exc.formatted]}
        problems = validate(schema, document)
        if problems:
            return {"errors": [dict(p.formatted, extensions={"code": "GRAPHQL_VALIDATION_FAILED"}) for p in problems]}
        cost = requested_cost(document, variables)
        if cost > MAX_QUERY_COST:
            message = f"Query cost is {cost}, which exceeds the single query max cost limit ({MAX_QUERY_COST})."
            return {"errors": [{"message": message, "extensions": {"code": "MAX_COST_EXCEEDED", "cost": cost}}]}
        with self._lock:
            now = time.monotonic()
            self._available = min(self.maximum, self._available + self.restore_rate * (now - self._at))
            self._at = now
            if self._available < cost:
                self.throttled += 1
                return {
                    "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                    "extensions": {"cost": self._cost(cost, 0)},
                }
            mutation = False
            for op in document.definitions:
                if isinstance(op, OperationDefinitionNode):
                    mutation = mutation or op.operation.value == "mutation"
                    self.operations.update(f.name.value for f in op.selection_set.selections)  # type: ignore[union-attr]
            result = execute(
                schema,
                document,
                self._resolvers(shop),
                variable_values=variables,
                operation_name=operation_name,
            )
            # Shopify checks the requested cost, then charges the actual one (the rest is refunded).
            actual = cost if mutation else min(cost, _objects(result.data))
            self._available -= actual
            self.points_spent += actual
            answer: dict[str, Any] = {"data": result.data, "extensions": {"cost": self._cost(cost, actual)}}
            if result.errors:
                answer["errors"] = [e.formatted for e in result.errors]
            return answer

    def _resolvers(self, shop: str = "") -> dict[str, Any]:
        root = {
            **self.state.root(),
            **self.oauth.root(shop),
            **self.inventory.root(),
            **self.orders.root(),
            **self.services.root(),
            **self.bulk.root(),
        }
        root.update(self.places.root(root["order"]))  # orders gain their risk assessments
        return root

    def _cost(self, requested: int, actual: int) -> dict[str, Any]:
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual if actual else None,
            "throttleStatus": {
                "maximumAvailable": self.maximum,
                "currentlyAvailable": int(self._available),
                "restoreRate": self.restore_rate,
            },
        }


def _objects(data: Any) -> int:
    """Actual cost of an answer, roughly: one point per object returned."""
    if isinstance(data, dict):
        return 1 + sum(_objects(v) for v in data.values())
    if isinstance(data, list):
        return sum(_objects(v) for v in data)
    return 0


def _json(payload: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(payload), status=status, headers=headers or {}, content_type="application/json")


def serve(**kwargs: Any) -> Iterator[FakeShopifyAdmin]:
    """For a pytest fixture: a started fake, stopped afterwards."""
    fake = FakeShopifyAdmin(**kwargs).start()
    try:
        yield fake
    finally:
        fake.stop()
