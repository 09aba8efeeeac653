"""The ids a log line is about (shop, order, job, event), carried by a context variable.

A job binds the ids of the row it loads (``bind(shop_id=…, order_id=…)``); the JSON formatter
(``config.logging.JsonFormatter``) adds them, plus the running RQ job's id, to every line logged
while it runs, whichever module logs. Only ids are ever kept here: never a domain, a token or a
payload.

Stale ids must never leak onto the next job's lines: a ``SimpleWorker`` runs many jobs in one
thread and context, and gunicorn threads serve many requests. So what is bound belongs to its
owner, the RQ job object running when it was bound (``None`` outside a job); a line logged under
another owner sees nothing of it. Web requests clear it when they start (``web.metrics``).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

from rq import get_current_job

#: the ids a line may carry, in the order they are written
ID_FIELDS = ("shop_id", "order_id", "job_id", "event_id")

_bound: contextvars.ContextVar[tuple[object | None, dict[str, Any]]] = contextvars.ContextVar(
    "relais_log_context", default=(None, {})
)


def bind(**ids: int | str | None) -> None:
    """Remember these ids for the rest of the current job (or request); None values are skipped.
    Names other than ``ID_FIELDS`` are refused: only ids belong here."""
    unknown = set(ids) - set(ID_FIELDS)
    if unknown:
        raise ValueError(f"not an id field: {', '.join(sorted(unknown))}")
    owner = get_current_job()
    current_owner, values = _bound.get()
    kept = dict(values) if current_owner is owner else {}
    kept.update({name: value for name, value in ids.items() if value is not None})
    _bound.set((owner, kept))


@contextlib.contextmanager
def bound(**ids: int | str | None) -> Iterator[None]:
    """``bind`` for the block only: what was bound before is back after it (a request binding a
    shop for one enqueue must not leave it to whatever its thread runs next)."""
    before = _bound.get()
    bind(**ids)
    try:
        yield
    finally:
        _bound.set(before)


def clear() -> None:
    """Forget every bound id (a new request starts)."""
    _bound.set((None, {}))


def current() -> dict[str, Any]:
    """The ids of the current job or request: the running RQ job's id, then what was bound."""
    owner = get_current_job()
    bound_owner, values = _bound.get()
    found: dict[str, Any] = dict(values) if bound_owner is owner else {}
    if owner is not None:
        found["job_id"] = owner.id
    return found


def shop_id() -> int | None:
    """The shop the current job or request works for, when one was bound."""
    value = current().get("shop_id")
    return int(value) if value is not None else None
