"""GCRA limits: exactly the burst at once, then the rate; none charged unless all pass."""

from __future__ import annotations

from tourviews.ingest.rules.throttle import Gcra, Limiter, Rate


def test_fresh_key_admits_exactly_its_burst_at_once() -> None:
    limiter = Limiter(Gcra(Rate.per_minute(120, 30)))
    admitted = sum(limiter.admit(("v",), 1000.0) == 0.0 for _ in range(100))
    assert admitted == 30


def test_refused_request_is_told_how_long_to_wait() -> None:
    limiter = Limiter(Gcra(Rate(2, 1)))  # one at a time, every half second
    assert limiter.admit(("k",), 10.0) == 0.0
    assert limiter.admit(("k",), 10.0) == 0.5
    assert limiter.admit(("k",), 10.25) == 0.25


def test_bucket_refills_at_the_rate() -> None:
    limiter = Limiter(Gcra(Rate(10, 5)))
    assert sum(limiter.admit(("k",), 0.0) == 0.0 for _ in range(10)) == 5
    assert (
        sum(limiter.admit(("k",), 1.0) == 0.0 for _ in range(20)) == 5
    )  # 10 tokens back, capped at 5
    assert sum(limiter.admit(("k",), 1.3) == 0.0 for _ in range(20)) == 3


def test_keys_have_separate_buckets() -> None:
    limiter = Limiter(Gcra(Rate(1, 1)))
    assert limiter.admit(("a",), 0.0) == 0.0
    assert limiter.admit(("b",), 0.0) == 0.0
    assert limiter.admit(("a",), 0.0) > 0.0


def test_a_refusal_by_one_limit_charges_none_of_the_others() -> None:
    per_ip, per_tour = Gcra(Rate(1, 2)), Gcra(Rate(1, 1))
    limiter = Limiter(per_ip, per_tour)
    assert limiter.admit(("ip", "tour"), 0.0) == 0.0
    assert limiter.admit(("ip", "tour"), 0.0) > 0.0  # the tour limit refuses
    # The IP bucket was not charged by the refusal: it still has one of its two.
    assert Limiter(per_ip).admit(("ip",), 0.0) == 0.0
