"""Mergeable distinct counts of visitors (Apache DataSketches HLL).

A sketch holds no visitor ID: only 2^12 small registers derived from hashes. It
answers a union of days with a relative standard error of about 1.6%.
"""

from __future__ import annotations

from collections.abc import Iterable

import datasketches

LG_K = 12
KIND = datasketches.tgt_hll_type.HLL_8


def sketch_of(visitors: Iterable[str]) -> bytes:
    sketch = datasketches.hll_sketch(LG_K, KIND)
    for visitor in visitors:
        sketch.update(visitor)
    return bytes(sketch.serialize_compact())


def union_estimate(sketches: Iterable[bytes], visitors: Iterable[str] = ()) -> int:
    """Distinct visitors over every sketch and the given visitor IDs, estimated."""
    union = datasketches.hll_union(LG_K)
    for blob in sketches:
        union.update(datasketches.hll_sketch.deserialize(blob))
    union.update(datasketches.hll_sketch.deserialize(sketch_of(visitors)))
    estimate: float = union.get_result().get_estimate()
    return round(estimate)
