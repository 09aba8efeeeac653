"""Pruning a shop's backlog (``jobs.fairness.prune``) costs what the fair-share decision needs: a
shop with thousands of jobs waiting is judged on its oldest batch, in the request that enqueues."""

from __future__ import annotations

import time

from rq.job import Job

from jobs import fairness

SHOP = 7
SHARE = 50


def backlog_of(runtime, live: int, lost: int) -> None:  # type: ignore[no-untyped-def]
    """``lost`` oldest entries whose jobs are gone (a SIGKILLed worker), then ``live`` waiting jobs."""
    hour_ago = time.time() - 3600  # settled, and not so old that it is forgotten unjudged
    entries = {f"lost-{n}": hour_ago + n / 1000 for n in range(lost)}
    entries.update({f"live-{n}": hour_ago + 1 + n / 1000 for n in range(live)})
    runtime.redis.zadd(fairness.backlog_key(SHOP), entries)
    with runtime.redis.pipeline(transaction=False) as pipe:
        for n in range(live):
            pipe.hset(Job.key_for(f"live-{n}"), "status", "queued")
        pipe.execute()


def hgets(runtime) -> int:  # type: ignore[no-untyped-def]
    return int(runtime.redis.info("commandstats").get("cmdstat_hget", {}).get("calls", 0))


def test_a_shop_far_over_its_share_is_judged_on_one_batch_and_its_lost_entries_still_go(runtime) -> None:  # type: ignore[no-untyped-def]
    backlog_of(runtime, live=3000, lost=5)
    before = hgets(runtime)
    assert fairness.prune(runtime.redis, SHOP, enough=SHARE) == 3000  # over its share: still counted whole
    assert hgets(runtime) - before <= fairness.PRUNE_BATCH
    assert not runtime.redis.zscore(fairness.backlog_key(SHOP), "lost-0")


def test_without_a_bound_every_settled_entry_is_judged(runtime) -> None:  # type: ignore[no-untyped-def]
    backlog_of(runtime, live=450, lost=400)
    assert fairness.prune(runtime.redis, SHOP) == 450
    assert fairness.backlog(runtime.redis, SHOP) == 450


def test_lost_entries_past_the_first_batches_are_found_until_enough_live_ones_are(runtime) -> None:  # type: ignore[no-untyped-def]
    backlog_of(runtime, live=20, lost=700)  # the share is not reached by the live ones: all are judged
    assert fairness.prune(runtime.redis, SHOP, enough=SHARE) == 20
