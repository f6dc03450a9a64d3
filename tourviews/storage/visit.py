"""The visit rule, shared by ingest (which gates beacons by it) and analytics (which cuts
the stored events by it): a visit ends after this long without a beacon."""

IDLE_SECONDS = 30 * 60
