"""Order states and the sets the pipeline reasons with.

received → held | ready → pushing → pushed → partially_shipped → shipped → delivered, with
cancel_requested → cancelled | cancel_too_late | partially_cancelled, no_shipping (nothing to
ship) and failed (with the reason). Each change is a row in ``order_transitions``.
"""

RECEIVED = "received"
HELD = "held"
READY = "ready"
PUSHING = "pushing"
PUSHED = "pushed"
PARTIALLY_SHIPPED = "partially_shipped"
SHIPPED = "shipped"
DELIVERED = "delivered"
CANCEL_REQUESTED = "cancel_requested"
CANCELLED = "cancelled"
CANCEL_TOO_LATE = "cancel_too_late"
PARTIALLY_CANCELLED = "partially_cancelled"
NO_SHIPPING = "no_shipping"
FAILED = "failed"

# Not yet at the provider: a cancel here needs no provider call.
BEFORE_PUSH = frozenset({RECEIVED, HELD, READY, NO_SHIPPING, FAILED})
# At the provider (or possibly: PUSHING may have reached it): a cancel must go to the provider.
AT_PROVIDER = frozenset({PUSHING, PUSHED, PARTIALLY_SHIPPED})
FULLY_SHIPPED = frozenset({SHIPPED, DELIVERED})
CANCEL_STATES = frozenset({CANCEL_REQUESTED, CANCELLED, CANCEL_TOO_LATE, PARTIALLY_CANCELLED})
