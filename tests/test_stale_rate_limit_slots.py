"""A tracking job that will never finish must not hold its order's one-at-a-time slot forever.

Found by the fault drill: Redis stopped while a parcel's tracking write ran; the write reached the
shop and committed, but the job's end never reached Redis, so RQ's ``RateLimit`` slot of that
order stayed taken and the order's next parcel waited behind it for good.
"""

from __future__ import annotations

from rq.job import Job, JobStatus
from rq.rate_limit import RateLimit

from jobs.maintenance import free_stale_slots
from jobs.scheduling import KNOWN_WORKER_KEY


def noop() -> str:
    return "done"


def test_a_slot_held_by_a_job_of_a_dead_worker_goes_to_the_next_job_of_the_order(runtime) -> None:  # type: ignore[no-untyped-def]
    queue = runtime.queue("tracking")
    limit = RateLimit("relais:order-tracking:test-order", 1)
    first = queue.enqueue(noop, job_id="write-1", rate_limit=limit)
    second = queue.enqueue(noop, job_id="write-2", rate_limit=limit)
    assert second.get_status() == JobStatus.RATE_LIMITED
    # The first ran on a pool worker that then died (its liveness key expired with it).
    runtime.redis.set(KNOWN_WORKER_KEY.format("pool-worker-gone"), 1)
    first.set_status(JobStatus.STARTED)
    first.worker_name = "pool-worker-gone"
    first.save()

    assert free_stale_slots(runtime) == 1

    assert Job.fetch("write-1", connection=runtime.redis).get_status() == JobStatus.FAILED
    assert Job.fetch("write-2", connection=runtime.redis).get_status() == JobStatus.QUEUED


def test_a_slot_held_by_a_job_still_running_on_a_live_worker_is_kept(runtime) -> None:  # type: ignore[no-untyped-def]
    queue = runtime.queue("tracking")
    limit = RateLimit("relais:order-tracking:busy-order", 1)
    first = queue.enqueue(noop, job_id="busy-1", rate_limit=limit)
    queue.enqueue(noop, job_id="busy-2", rate_limit=limit)
    first.set_status(JobStatus.STARTED)
    first.worker_name = "some-rq-worker-outside-the-pool"  # never declared dead
    first.save()

    assert free_stale_slots(runtime) == 0
    assert Job.fetch("busy-2", connection=runtime.redis).get_status() == JobStatus.RATE_LIMITED
