"""Metrics (Prometheus) and traces (OpenTelemetry) of the services."""
