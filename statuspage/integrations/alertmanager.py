"""Prometheus Alertmanager's webhook receiver payload, version 4.

Facts from Alertmanager's docs (configuration.md, `<webhook_config>`) and `notify/webhook`: a POST
with `{"version": "4", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
"commonLabels", "commonAnnotations", "externalURL", "alerts": [...]}`; each alert has `status`
(firing|resolved), `labels`, `annotations`, `startsAt`, `endsAt` (Go's zero time
"0001-01-01T00:00:00Z" while firing without an end), `generatorURL` and `fingerprint`. Any 2xx
answer is success; 5xx is retried; 4xx is not (the next group_interval sends again).
"""
from __future__ import annotations

from .alerts import Incoming, Payload, PayloadError, alert_list, require_object

METHODS = ("POST",)
VERSION = "4"


def parse(incoming: Incoming) -> Payload:
    data = require_object(incoming.json, "Alertmanager's webhook payload")
    version = data.get("version")
    if version != VERSION:
        raise PayloadError(f'version must be "{VERSION}" (Alertmanager\'s webhook payload version 4); '
                           f"got {str(version)[:20]!r}")
    payload = Payload(alert_list(data.get("alerts")))
    truncated = data.get("truncatedAlerts")
    if isinstance(truncated, int) and not isinstance(truncated, bool) and truncated > 0:
        payload.notes.append(f"Alertmanager left out {truncated} alert(s) (max_alerts); they keep their last state")
    return payload
