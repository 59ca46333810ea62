"""The webhook inbox's claim: concurrent drainers (processes) share it out, never twice."""

from __future__ import annotations

import threading

from omnicrm.core.store import Store, inbox


def test_simultaneous_claims_never_take_one_row_twice(store: Store, store_url: str) -> None:
    inbox.enqueue_many(
        store,
        [inbox.Arrival("tokyo", f"e{n}", "customers/update", b"{}") for n in range(400)],
    )
    drainers = 4
    # The drainers claim in lockstep, each on a store (connection pool) of its own as in
    # separate processes, so that their claims meet on the same oldest rows.
    barrier = threading.Barrier(drainers, timeout=60)
    claimed: list[list[int]] = [[] for _ in range(drainers)]
    failures: list[BaseException] = []

    def drain(mine: list[int]) -> None:
        own = Store(store_url)
        try:
            while True:
                barrier.wait()
                items = inbox.claim(own, limit=5)
                mine.extend(item.id for item in items)
                barrier.wait()  # all have looked: stop together once the inbox is out
                if inbox.pending(own) == len(set().union(*claimed)):
                    return
        except BaseException as exc:
            failures.append(exc)
            barrier.abort()
        finally:
            own.close()

    threads = [threading.Thread(target=drain, args=(mine,)) for mine in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures
    every = [row for mine in claimed for row in mine]
    assert len(every) == len(set(every)) == 400
    assert all(claimed)  # each drainer got a share
