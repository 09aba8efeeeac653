"""RQ jobs. Each carries ids only, loads state, decides, calls out with an idempotency key, records."""
