"""Simulators that produce realistic game traffic for demos and tests (no game needed)."""
