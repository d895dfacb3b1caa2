"""Grafana Alerting's webhook contact point.

Facts from grafana/alerting (`receivers/webhook/v1`, `templates.ExtendedData`): a POST (or PUT, the
contact point's HTTP method setting) with `{"receiver", "status", "orgId", "alerts": [...],
"groupLabels", "commonLabels", "commonAnnotations", "externalURL", "version": "1", "groupKey",
"truncatedAlerts", "title", "state": "alerting"|"ok", "message"}`; each alert carries Alertmanager's
fields (`status`, `labels`, `annotations`, `startsAt`, `endsAt`, `generatorURL`, `fingerprint`) plus
`silenceURL`, `dashboardURL`, `panelURL`, `values`, `valueString`. Authorization comes from the
contact point's "Authorization header" scheme/credentials settings.
"""
from __future__ import annotations

from .alerts import Incoming, Payload, PayloadError, alert_list, require_object

METHODS = ("POST", "PUT")


def parse(incoming: Incoming) -> Payload:
    data = require_object(incoming.json, "Grafana Alerting's webhook payload")
    if "alerts" not in data and ("ruleName" in data or "evalMatches" in data):
        raise PayloadError("this is Grafana's legacy dashboard-alerting payload (no alerts list); "
                           "use a Grafana Alerting webhook contact point")
    payload = Payload(alert_list(data.get("alerts")))
    truncated = data.get("truncatedAlerts")
    if isinstance(truncated, int) and not isinstance(truncated, bool) and truncated > 0:
        payload.notes.append(f"Grafana left out {truncated} alert(s) (maxAlerts); they keep their last state")
    return payload
