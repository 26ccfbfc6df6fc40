"""Job order: fairness across owners and bounded model affinity. Pure logic, no torch."""

import pytest

from engine.queue import FairQueue, QueuedJob


def drain(queue: FairQueue, loaded=()) -> list[str]:
    order = []
    while (job := queue.pop(loaded)) is not None:
        order.append(job.id)
    return order


def test_fifo_for_one_owner():
    q = FairQueue()
    for i in range(5):
        q.push(QueuedJob(f"a{i}", owner="ann", model="dev"))
    assert drain(q, {"dev"}) == [f"a{i}" for i in range(5)]


def test_one_users_twenty_jobs_do_not_starve_anothers_one():
    q = FairQueue()
    for i in range(20):
        q.push(QueuedJob(f"a{i}", owner="ann", model="dev"))
    assert q.pop({"dev"}).id == "a0"  # ann's first job starts before bob arrives
    q.push(QueuedJob("b0", owner="bob", model="dev"))
    assert q.pop({"dev"}).id == "b0"


def test_owners_take_turns():
    q = FairQueue()
    for i in range(3):
        q.push(QueuedJob(f"a{i}", owner="ann", model="dev"))
    for i in range(3):
        q.push(QueuedJob(f"b{i}", owner="bob", model="dev"))
    q.push(QueuedJob("c0", owner="cy", model="dev"))
    assert drain(q, {"dev"}) == ["a0", "b0", "c0", "a1", "b1", "a2", "b2"]


def test_prefers_a_job_whose_model_is_loaded():
    q = FairQueue()
    q.push(QueuedJob("a0", owner="ann", model="canny"))
    q.push(QueuedJob("b0", owner="bob", model="dev"))
    assert q.pop({"dev"}).id == "b0"
    assert q.pop({"dev"}).id == "a0"


def test_affinity_never_passes_a_job_over_more_than_max_skips_times():
    q = FairQueue(max_skips=2)
    q.push(QueuedJob("a0", owner="ann", model="fill"))
    for i in range(6):
        q.push(QueuedJob(f"b{i}", owner="bob", model="dev"))
        q.push(QueuedJob(f"c{i}", owner="cy", model="dev"))
    order = drain(q, {"dev"})
    assert order.index("a0") == 2  # passed over twice, then it goes first
    skipped = order[: order.index("a0")]
    assert len(skipped) == 2


def test_max_skips_zero_is_plain_fairness():
    q = FairQueue(max_skips=0)
    q.push(QueuedJob("a0", owner="ann", model="canny"))
    q.push(QueuedJob("b0", owner="bob", model="dev"))
    assert q.pop({"dev"}).id == "a0"


def test_without_anything_loaded_the_fair_choice_goes():
    q = FairQueue()
    q.push(QueuedJob("a0", owner="ann", model="canny"))
    q.push(QueuedJob("b0", owner="bob", model="dev"))
    assert q.pop(()).id == "a0"


def test_remove_and_contains():
    q = FairQueue()
    q.push(QueuedJob("a0", owner="ann", model="dev"))
    q.push(QueuedJob("a1", owner="ann", model="dev"))
    assert "a1" in q
    assert q.remove("a1") is True
    assert q.remove("a1") is False
    assert "a1" not in q
    assert len(q) == 1


def test_plan_predicts_the_pop_order_without_changing_the_queue():
    q = FairQueue()
    q.push(QueuedJob("a0", owner="ann", model="canny"))
    q.push(QueuedJob("a1", owner="ann", model="canny"))
    q.push(QueuedJob("b0", owner="bob", model="dev"))
    planned = q.plan({"dev"})
    assert len(q) == 3
    assert planned == drain(q, {"dev"})


def test_bad_max_skips():
    with pytest.raises(ValueError, match="max_skips"):
        FairQueue(max_skips=-1)


def test_plan_matches_popping_with_affinity_and_skips():
    import random

    rng = random.Random(7)
    for _ in range(50):
        q = FairQueue(max_skips=2)
        for i in range(rng.randint(1, 40)):
            q.push(QueuedJob(f"j{i}", owner=rng.choice("abcde"), model=rng.choice(["dev", "canny", "fill"])))
        loaded = {rng.choice(["dev", "canny", "fill"])}
        planned = q.plan(loaded)
        popped = []
        while (job := q.pop(loaded)) is not None:
            popped.append(job.id)
            loaded = {job.model}
        assert planned == popped
