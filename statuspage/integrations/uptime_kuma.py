"""Uptime Kuma's webhook notification.

Facts from louislam/uptime-kuma (`server/notification-providers/webhook.js`, `server/model/monitor.js`,
`server/model/heartbeat.js`): the body is `{"heartbeat": heartbeatJSON, "monitor": monitorJSON,
"msg": "[<name>] [🔴 Down|✅ Up] <check message>"}` as JSON, or the same object JSON-encoded in the
multipart field `data` ("form-data" content type), or — with the GET method of newer versions —
query parameters `msg`, `heartbeat` and `monitor` (the last two JSON-encoded).
`heartbeat.status` is 0 DOWN, 1 UP, 2 PENDING, 3 MAINTENANCE; `heartbeat.time` is UTC
"YYYY-MM-DD HH:mm:ss.SSS"; `monitor` has `id`, `name`, `type`, `url`, `tags` ([{name, value, ...}]).
Notifications come on important changes (UP→DOWN, PENDING→DOWN, DOWN→UP, MAINTENANCE→DOWN) and
repeat while down (resend interval). A test notification or a certificate-expiry notice has
`heartbeat` and `monitor` null and only `msg`.

Each monitor is one alert (fingerprint `monitor-<id>`): DOWN fires it, UP resolves it. Its labels are
`monitor` (the name), `monitor_id`, `monitor_type`, `alertname` (the name) and the monitor's tags
(tag name → value), so a tag `component` or `severity` works like an Alertmanager label.
"""
from __future__ import annotations

from typing import Any

from ..errors import ValidationError
from ..validation import decode_json
from .alerts import Incoming, IncomingAlert, Payload, PayloadError, require_object, timestamp

METHODS = ("POST", "GET")
DOWN, UP, PENDING, MAINTENANCE = 0, 1, 2, 3


def _decode(incoming: Incoming) -> dict[str, Any]:
    if incoming.method == "GET":
        data: dict[str, Any] = {"msg": incoming.args.get("msg")}
        for key in ("heartbeat", "monitor"):
            data[key] = _json_field(incoming.args.get(key), key)
        return data
    if incoming.json is None and "data" in incoming.form:
        return require_object(_json_field(incoming.form["data"], "data"), "Uptime Kuma's webhook body")
    return require_object(incoming.json, "Uptime Kuma's webhook body: {heartbeat, monitor, msg}")


def _json_field(raw: str | None, name: str) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return decode_json(raw)
    except ValidationError as exc:
        raise PayloadError(f"{name}: {exc.message}") from None


def parse(incoming: Incoming) -> Payload:
    data = _decode(incoming)
    heartbeat, monitor, msg = data.get("heartbeat"), data.get("monitor"), data.get("msg")
    if msg is not None and not isinstance(msg, str):
        raise PayloadError("msg must be a string")
    if heartbeat is None:
        if monitor is None and msg is None:
            raise PayloadError("expected Uptime Kuma's webhook body {heartbeat, monitor, msg}")
        # Test notifications and certificate-expiry notices carry no heartbeat: nothing to change.
        return Payload(notes=[f"message without a heartbeat (a test or certificate notice): {(msg or '')[:200]}"])
    if not isinstance(heartbeat, dict):
        raise PayloadError("heartbeat must be an object")
    if not isinstance(monitor, dict):
        raise PayloadError("monitor must be an object with the monitor's id and name")
    status = heartbeat.get("status")
    if isinstance(status, bool) or status not in (DOWN, UP, PENDING, MAINTENANCE):
        raise PayloadError("heartbeat.status must be 0 (down), 1 (up), 2 (pending) or 3 (maintenance)")
    name = monitor.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PayloadError("monitor.name must be a non-empty string")
    monitor_id = monitor.get("id")
    numeric = type(monitor_id) is int or (isinstance(monitor_id, str) and monitor_id.isascii() and monitor_id.isdigit())
    if monitor_id is not None and not numeric:
        raise PayloadError("monitor.id must be a number")
    if status == PENDING:
        return Payload(notes=[f"{name[:100]}: pending (Uptime Kuma is retrying the check); no change"])
    if status == MAINTENANCE:
        return Payload(notes=[f"{name[:100]}: in maintenance in Uptime Kuma; no change"])
    labels = {"alertname": name, "monitor": name}
    if monitor_id is not None:
        labels["monitor_id"] = str(monitor_id)[:40]
    if isinstance(monitor.get("type"), str):
        labels["monitor_type"] = monitor["type"][:40]
    tags = monitor.get("tags")
    if isinstance(tags, list):
        for tag in tags[:50]:
            if isinstance(tag, dict) and isinstance(tag.get("name"), str) and tag["name"] not in labels:
                value = tag.get("value")
                labels[tag["name"][:64]] = value[:200] if isinstance(value, str) else ""
    when = timestamp(heartbeat.get("time"), "heartbeat.time")
    text = heartbeat.get("msg") if isinstance(heartbeat.get("msg"), str) else ""
    fingerprint = f"monitor-{labels['monitor_id']}" if monitor_id is not None else f"monitor:{name.casefold()[:100]}"
    alert = IncomingAlert(
        fingerprint=fingerprint,
        firing=status == DOWN,
        labels=labels,
        summary=" ".join(f"{name}: {text}".split())[:300] if text else name[:300],
        starts_at=when if status == DOWN else None,
        ends_at=when if status == UP else None,
    )
    return Payload([alert])
