"""tourviews: privacy-preserving view analytics for public 3D tour pages."""

__version__ = "0.1.0"
