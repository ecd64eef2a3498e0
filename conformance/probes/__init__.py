"""Probes that run inside the platform from the suite's own image (``python -m conformance.probes.<name>``)."""
