"""Duplicates and visitor-ID rotation, as pure steps with explicit times."""

from __future__ import annotations

from tourviews.ingest.rules.dedup import Deduplicator
from tourviews.ingest.rules.rotation import RotationGuard

WINDOW = 1800.0


def test_duplicate_view_within_window_is_not_counted() -> None:
    dedup = Deduplicator(WINDOW)
    assert not dedup.is_duplicate(("t1", None, "v"), 0.0)
    assert dedup.is_duplicate(("t1", None, "v"), WINDOW - 0.001)


def test_view_at_the_end_of_the_window_counts_again() -> None:
    dedup = Deduplicator(WINDOW)
    assert not dedup.is_duplicate(("t1", None, "v"), 0.0)
    assert not dedup.is_duplicate(("t1", None, "v"), WINDOW)


def test_window_runs_from_the_last_counted_view_not_the_last_duplicate() -> None:
    dedup = Deduplicator(WINDOW)
    dedup.is_duplicate(("t1", None, "v"), 0.0)
    assert dedup.is_duplicate(("t1", None, "v"), 1000.0)
    assert not dedup.is_duplicate(("t1", None, "v"), 1800.0)


def test_other_tour_or_scene_is_not_a_duplicate() -> None:
    dedup = Deduplicator(WINDOW)
    dedup.is_duplicate(("t1", None, "v"), 0.0)
    assert not dedup.is_duplicate(("t2", None, "v"), 1.0)
    assert not dedup.is_duplicate(("t1", "lobby", "v"), 1.0)


def test_a_count_taken_back_lets_the_retry_count() -> None:
    dedup = Deduplicator(WINDOW)
    assert not dedup.is_duplicate(("t1", None, "v"), 0.0)
    dedup.forget(("t1", None, "v"), 0.0)  # its commit failed
    assert not dedup.is_duplicate(("t1", None, "v"), 1.0)
    dedup.forget(("t1", None, "v"), 0.0)  # a stale take-back: counted again since
    assert dedup.is_duplicate(("t1", None, "v"), 2.0)


def test_state_stays_bounded_under_a_flood_of_fresh_visitors() -> None:
    dedup = Deduplicator(WINDOW, max_keys=1_000)
    for i in range(10_000):
        dedup.is_duplicate(("t1", None, f"v{i}"), float(i))
    assert len(dedup) <= 1_000


def test_rotation_stops_counting_past_the_limit_of_visitor_ids() -> None:
    guard = RotationGuard(WINDOW, limit=3)
    assert [guard.is_rotating(b"ip", "t1", f"v{i}", 0.0) for i in range(5)] == [
        False, False, False, True, True,
    ]  # fmt: skip
    assert not guard.is_rotating(b"ip", "t1", "v0", 1.0)  # a known visitor still passes
    assert not guard.is_rotating(b"ip", "t2", "v9", 1.0)  # another tour is counted apart


def test_rotation_limit_frees_up_after_the_window() -> None:
    guard = RotationGuard(WINDOW, limit=2)
    guard.is_rotating(b"ip", "t1", "a", 0.0)
    guard.is_rotating(b"ip", "t1", "b", 0.0)
    assert guard.is_rotating(b"ip", "t1", "c", 10.0)
    assert not guard.is_rotating(b"ip", "t1", "c", WINDOW + 1)


def test_rotation_state_stays_bounded_under_a_flood_of_sources() -> None:
    guard = RotationGuard(WINDOW, limit=50, max_entries=1_000)
    for i in range(20_000):
        guard.is_rotating(i.to_bytes(16, "big"), "t1", f"v{i}", float(i))
    assert guard.entries <= 1_000


def test_idle_sources_are_forgotten_after_the_window() -> None:
    guard = RotationGuard(WINDOW, limit=50)
    guard.is_rotating(b"ip", "t1", "a", 0.0)
    guard.forget_idle(WINDOW + 1)
    assert guard.entries == 0


def test_dedup_counts_again_once_its_key_was_evicted() -> None:
    dedup = Deduplicator(WINDOW, max_keys=10)
    dedup.is_duplicate(("t1", None, "first"), 0.0)
    for i in range(20):
        dedup.is_duplicate(("t1", None, f"v{i}"), 1.0)
    assert not dedup.is_duplicate(("t1", None, "first"), 2.0)  # lenient when flooded, but bounded
