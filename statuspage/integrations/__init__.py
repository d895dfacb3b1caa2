"""Monitoring sets component status: Alertmanager, Grafana and Uptime Kuma webhooks and heartbeats.

`models` (tables), one parser per kind (`alertmanager`, `grafana`, `uptime_kuma`; heartbeats need
none), `service` (configuration, applying payloads, ownership, heartbeat checks) and `logs`
(tokens never logged). The receivers' HTTP layer is `web/hooks.py`.
"""
