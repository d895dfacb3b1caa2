"""OpenAPI 3.1 description of the admin API (/api/v1) and the visitor push API."""
from __future__ import annotations

from typing import Any

from ..models import COMPONENT_STATUSES, EVENT_TYPES, INCIDENT_IMPACTS, INCIDENT_STATUSES, MAINTENANCE_STATUSES
from ..push.seen import MAX_AGE_MS, MAX_REPORTS


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


ERR = {"description": "Error", **_json(_ref("Error"))}


def _op(summary: str, *, body: dict | None = None, ok: int = 200, resp: dict | None = None,
        params: list | None = None, auth: bool = True, errors: tuple[int, ...] = (400, 401, 404)) -> dict:
    op: dict[str, Any] = {"summary": summary, "responses": {}}
    if ok == 204:
        op["responses"]["204"] = {"description": "Done"}
    else:
        op["responses"][str(ok)] = {"description": "OK", **(_json(resp) if resp else {})}
    for code in errors:
        op["responses"][str(code)] = ERR
    if body is not None:
        op["responses"]["413"] = ERR  # every body is limited to MAX_CONTENT_LENGTH
        op["requestBody"] = {"required": True, **_json(body)}
    if params:
        op["parameters"] = params
    if not auth:
        op["security"] = []
    return op


def _id_param(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}


COMPONENTS_MAP = {
    "type": "object", "description": "component id → new status",
    "additionalProperties": {"type": "string", "enum": list(COMPONENT_STATUSES)},
}
MAX_ID = 2**31 - 1
IDS = {"type": "array", "maxItems": 500, "items": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}


def build_openapi() -> dict[str, Any]:
    schemas = {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"},
                                                                         "field": {"type": "string"}}},
        "Component": {"type": "object", "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"}, "status": {"enum": list(COMPONENT_STATUSES)},
            "description": {"type": ["string", "null"]}, "group_id": {"type": ["integer", "null"]},
            "position": {"type": "integer"}, "showcase": {"type": "boolean"}}},
        "ComponentInput": {"type": "object", "additionalProperties": False, "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 200}, "description": {"type": ["string", "null"]},
            "status": {"enum": list(COMPONENT_STATUSES)},
            "group_id": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_ID},
            "position": {"type": "integer", "minimum": 0, "maximum": 100000}, "showcase": {"type": "boolean"}}},
        "GroupInput": {"type": "object", "additionalProperties": False, "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 200}, "description": {"type": ["string", "null"]},
            "position": {"type": "integer", "minimum": 0, "maximum": 100000}}},
        "Incident": {"type": "object", "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"}, "status": {"type": "string"},
            "impact": {"type": "string"}, "incident_updates": {"type": "array"}, "components": {"type": "array"}}},
        "IncidentInput": {"type": "object", "additionalProperties": False, "required": ["name"], "properties": {
            "name": {"type": "string", "maxLength": 300},
            "status": {"enum": [st for st in INCIDENT_STATUSES if st != "postmortem"],
                       "description": "postmortem comes with publishing one (PUT .../postmortem)"},
            "impact": {"enum": list(INCIDENT_IMPACTS)}, "body": {"type": "string"},
            "components": COMPONENTS_MAP, "component_ids": IDS, "notify": {"type": "boolean"},
            "restore_components": {
                "type": "boolean", "default": True,
                "description": "created already resolved: components named in `component_ids` (without a "
                               "status) go back to operational as resolving would; statuses named in "
                               "`components` are kept"}}},
        "UpdateInput": {"type": "object", "additionalProperties": False, "minProperties": 1, "properties": {
            "status": {"type": "string", "enum": list(INCIDENT_STATUSES) + list(MAINTENANCE_STATUSES)},
            "body": {"type": "string", "description": "an update without a body must change the status, the "
                                                      "impact or a component (else 400)"},
            "impact": {"enum": list(INCIDENT_IMPACTS)},
            "components": COMPONENTS_MAP, "component_ids": IDS, "notify": {"type": "boolean"},
            "restore_components": {
                "type": "boolean", "default": True,
                "description": "incidents: an update that resolves the incident puts its components back to "
                               "operational, except those named in `components` with a status, those under "
                               "maintenance and those in another unresolved incident; false leaves them as "
                               "they are"}}},
        "MaintenanceInput": {"type": "object", "additionalProperties": False, "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 300},
            "status": {"enum": list(MAINTENANCE_STATUSES)}, "body": {"type": "string"},
            "scheduled_for": {"type": "string", "format": "date-time"},
            "scheduled_until": {"type": "string", "format": "date-time"},
            "component_ids": IDS, "components": COMPONENTS_MAP,
            "auto_transition": {"type": "boolean"},
            "auto_transition_to_maintenance_state": {
                "type": "boolean",
                "description": "while in progress its operational components show under_maintenance, and return "
                               "to operational when it completes (default true)"},
            "notify": {"type": "boolean", "description": "notify subscribers; also decides whether the automatic "
                                                         "start and completion notify"},
            "allow_past": {"type": "boolean", "default": False,
                           "description": "a scheduled maintenance whose start is more than 5 minutes ago, or whose "
                                          "end has passed, is refused (400) unless this is true; it then starts "
                                          "at once"}}},
        "UpdateEdit": {
            "type": "object", "additionalProperties": False, "required": ["body"],
            "description": "Correct an update's text; it is marked edited (edited_at). Status and component "
                           "changes stay as posted.",
            "properties": {"body": {"type": "string", "minLength": 1, "maxLength": 20000},
                           "notify": {"type": "boolean", "description": "incidents: send incident.updated with the "
                                                                        "corrected text (default false)"}}},
        "PostmortemInput": {
            "type": "object", "additionalProperties": False, "required": ["body"],
            "description": "A resolved incident's postmortem (Markdown); its status becomes postmortem.",
            "properties": {"body": {"type": "string", "minLength": 1, "maxLength": 60000},
                           "notify": {"type": "boolean", "description": "send incident.updated (default false)"}}},
        "Trigger": {"type": "object", "additionalProperties": False, "properties": {
            "enabled": {"type": "boolean"}, "title_template": {"type": "string"}, "body_template": {"type": "string"},
            "urgency": {"enum": ["very-low", "low", "normal", "high"]}, "ttl": {"type": "integer", "minimum": 0},
            "min_impact": {"type": ["string", "null"], "enum": [*INCIDENT_IMPACTS, None],
                           "description": "incident events only: not sent below this impact"},
            "component_ids": {**IDS, "description": "sent only for events about one of these components "
                                                    "(or about no component in particular); [] = any"}}},
        "PushSettings": {"type": "object", "additionalProperties": False, "properties": {
            "enabled": {"type": "boolean"}, "icon_url": {"type": ["string", "null"]},
            "badge_url": {"type": ["string", "null"]}, "debounce_seconds": {"type": "integer", "minimum": 0},
            "payload_format": {"enum": ["auto", "classic", "declarative"],
                               "description": "auto (default): Declarative Web Push for Apple endpoints, classic "
                                              "JSON for the others; classic or declarative: that shape for all"},
            "maintenance_reminder_minutes": {
                "type": "array", "maxItems": 5, "items": {"type": "integer", "minimum": 1, "maximum": 10080},
                "description": "maintenance.reminder lead times, minutes before a scheduled start "
                               "(default [60]; [] sends none)"}}},
        "PushSubscription": {
            "type": "object", "required": ["endpoint", "keys"], "additionalProperties": False,
            "description": "PushSubscription.toJSON(); the endpoint must be on a known push service "
                           "(or PUSH_EXTRA_ORIGINS), p256dh a P-256 point and auth 16 bytes (base64url).",
            "properties": {
                "endpoint": {"type": "string", "format": "uri", "maxLength": 2048},
                "expirationTime": {"type": ["number", "null"], "minimum": 0},
                "keys": {"type": "object", "required": ["p256dh", "auth"], "additionalProperties": False,
                         "properties": {"p256dh": {"type": "string", "maxLength": 100},
                                        "auth": {"type": "string", "maxLength": 40}}},
                "components": IDS, "oldEndpoint": {"type": "string", "maxLength": 2048},
                "maintenance": {"type": "boolean", "description": "also maintenance events (scheduled, "
                                "reminder, started, completed); false = incidents only. Default true; "
                                "left out, an existing subscription keeps its choice."},
                "resolved": {"type": "boolean", "description": "be told when an incident is resolved or a "
                             "component recovers. Default true; left out, an existing subscription keeps "
                             "its choice."}}},
    }
    schemas.update(_integration_schemas())
    schemas["ComponentCreate"] = {**schemas["ComponentInput"], "required": ["name"]}
    schemas["GroupCreate"] = {**schemas["GroupInput"], "required": ["name"]}
    schemas["MaintenanceCreate"] = {**schemas["MaintenanceInput"],
                                    "required": ["name", "scheduled_for", "scheduled_until"]}
    list_params = [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                   {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 10**7}}]
    paths = {
        "/api/v1/components": {
            "get": _op("List components", resp={"type": "array", "items": _ref("Component")}),
            "post": _op("Create a component (names are unique within their group, ignoring case: else 409)",
                        body=_ref("ComponentCreate"), ok=201, resp=_ref("Component"), errors=(400, 401, 404, 409)),
        },
        "/api/v1/components/{component_id}": {
            "parameters": [_id_param("component_id")],
            "get": _op("Get a component", resp=_ref("Component")),
            "patch": _op("Update a component (status changes record events)", body=_ref("ComponentInput"),
                         resp=_ref("Component"), errors=(400, 401, 404, 409)),
            "delete": _op("Delete a component", ok=204),
        },
        "/api/v1/component-groups": {
            "get": _op("List component groups", resp={"type": "array"}),
            "post": _op("Create a component group (names are unique, ignoring case: else 409)",
                        body=_ref("GroupCreate"), ok=201, resp={"type": "object"}, errors=(400, 401, 409)),
        },
        "/api/v1/component-groups/{group_id}": {
            "parameters": [_id_param("group_id")],
            "patch": _op("Update a group", body=_ref("GroupInput"), resp={"type": "object"},
                         errors=(400, 401, 404, 409)),
            "delete": _op("Delete a group", ok=204),
        },
        "/api/v1/component-order": {
            "put": _op("Set one list's order on the page: the top level (groups and ungrouped components, "
                       "group_id null) or one group's components; `order` must name exactly that list's items",
                       body={"type": "object", "additionalProperties": False, "required": ["order"], "properties": {
                           "group_id": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_ID},
                           "order": {"type": "array", "maxItems": 1000,
                                     "items": {"type": "string", "pattern": "^[gc][0-9]+$"},
                                     "description": "\"g<id>\" a group, \"c<id>\" a component"}}},
                       resp={"type": "object"}, errors=(400, 401, 404, 409)),
        },
        "/api/v1/incidents": {
            "get": _op("List incidents", params=list_params, resp={"type": "array", "items": _ref("Incident")}),
            "post": _op("Create an incident", body=_ref("IncidentInput"), ok=201, resp=_ref("Incident")),
        },
        "/api/v1/incidents/{incident_id}": {
            "parameters": [_id_param("incident_id")], "get": _op("Get an incident", resp=_ref("Incident")),
            "delete": {**_op("Delete an incident and its updates (notifications already sent stay sent). An "
                             "unresolved incident's components go back to operational as resolving would, "
                             "quietly, unless restore_components is false (query parameter, or a JSON body "
                             "{\"restore_components\": false})", ok=204),
                       "parameters": [{"name": "restore_components", "in": "query", "required": False,
                                       "schema": {"type": "boolean", "default": True}}]}},
        "/api/v1/incidents/{incident_id}/updates/{update_id}": {
            "parameters": [_id_param("incident_id"), _id_param("update_id")],
            "patch": _op("Edit an update's text (marked edited; no notification unless notify)",
                         body=_ref("UpdateEdit"), resp=_ref("Incident")),
        },
        "/api/v1/incidents/{incident_id}/updates": {
            "parameters": [_id_param("incident_id")],
            "post": _op("Post an incident update", body=_ref("UpdateInput"), ok=201, resp=_ref("Incident")),
        },
        "/api/v1/incidents/{incident_id}/postmortem": {
            "parameters": [_id_param("incident_id")],
            "put": _op("Publish or replace a resolved incident's postmortem", body=_ref("PostmortemInput"),
                       resp=_ref("Incident"), errors=(400, 401, 404, 409)),
            "delete": _op("Remove the postmortem (the incident is resolved again)", resp=_ref("Incident")),
        },
        "/api/v1/maintenances": {
            "get": _op("List maintenances", params=list_params, resp={"type": "array"}),
            "post": _op("Schedule a maintenance", body=_ref("MaintenanceCreate"), ok=201, resp=_ref("Incident")),
        },
        "/api/v1/maintenances/{maintenance_id}": {
            "parameters": [_id_param("maintenance_id")],
            "get": _op("Get a maintenance", resp=_ref("Incident")),
            "patch": _op("Reschedule or move a maintenance", body=_ref("MaintenanceInput"), resp=_ref("Incident")),
            "delete": _op("Delete a maintenance and its updates", ok=204),
        },
        "/api/v1/maintenances/{maintenance_id}/updates/{update_id}": {
            "parameters": [_id_param("maintenance_id"), _id_param("update_id")],
            "patch": _op("Edit a maintenance update's text (marked edited)", body=_ref("UpdateEdit"),
                         resp=_ref("Incident")),
        },
        "/api/v1/maintenances/{maintenance_id}/updates": {
            "parameters": [_id_param("maintenance_id")],
            "post": _op("Post a maintenance update", body=_ref("UpdateInput"), ok=201, resp=_ref("Incident")),
        },
        "/api/v1/triggers": {
            "get": _op("List triggers", resp={"type": "array"}),
            "put": _op("Change triggers (admin)", body={"type": "object", "propertyNames": {"enum": list(EVENT_TYPES)},
                                                         "additionalProperties": _ref("Trigger")},
                       resp={"type": "array"}, errors=(400, 401, 403)),
        },
        "/api/v1/push/settings": {
            "get": _op("Push settings", resp={"type": "object"}),
            "put": _op("Change push settings (admin)", body=_ref("PushSettings"), resp={"type": "object"},
                       errors=(400, 401, 403)),
        },
        "/api/v1/push/audience": {
            "get": _op("How many current subscribers a message would reach (the composer's preview)", params=[
                {"name": "event", "in": "query", "required": True, "schema": {"enum": list(EVENT_TYPES)}},
                {"name": "component_ids", "in": "query", "schema": {"type": "string"},
                 "description": "comma-separated component ids"},
                {"name": "impact", "in": "query", "schema": {"enum": list(INCIDENT_IMPACTS)}},
                {"name": "notify", "in": "query", "schema": {"enum": ["1", "0", "true", "false"]}},
            ], resp={"type": "object", "properties": {"event": {"type": "string"}, "count": {"type": "integer"},
                                                      "reason": {"type": ["string", "null"]}}},
                errors=(400, 401)),
        },
        "/api/v1/subscriptions": {"get": _op("List push subscriptions", params=list_params, resp={"type": "object"})},
        "/api/v1/subscriptions/{subscription_id}/test": {
            "parameters": [_id_param("subscription_id")],
            "post": _op("Send a test push to one subscription (admin)", ok=202, resp={"type": "object"},
                        errors=(400, 401, 403, 404, 503)),
        },
        "/api/v1/events": {"get": _op("Events with delivery counts (queued, sent, expired, failed, shown, opened), "
                                      "open_rate and shown_latency p50/p95", params=list_params,
                                      resp={"type": "array"})},
        "/api/push/public-key": {"get": _op("VAPID public key", auth=False, resp={"type": "object"}, errors=(503,))},
        "/api/push/subscriptions": {
            "post": _op("Subscribe a browser", body=_ref("PushSubscription"), ok=201, resp={"type": "object"},
                        auth=False, errors=(400, 413, 429, 503)),
            "delete": _op("Unsubscribe a browser", body={"type": "object", "required": ["endpoint"],
                                                         "additionalProperties": False,
                                                         "properties": {"endpoint": {"type": "string",
                                                                                     "maxLength": 2048}}},
                          ok=204, auth=False, errors=(400, 404, 429)),
        },
        "/api/push/reports": {
            "post": _op("Report notifications shown or opened, by event id only (the service worker; "
                        "counts are capped at what the event sent). The answer is an empty 202: it "
                        "does not say how many counted", auth=False, ok=202,
                        body={"type": "object", "required": ["reports"], "additionalProperties": False,
                              "properties": {"reports": {
                                  "type": "array", "minItems": 1, "maxItems": MAX_REPORTS,
                                  "items": {"type": "object", "required": ["event", "kind", "age"],
                                            "additionalProperties": False, "properties": {
                                                "event": {"type": "integer", "minimum": 1,
                                                          "maximum": 2**31 - 1},
                                                "kind": {"enum": ["shown", "opened"]},
                                                "age": {"type": "integer", "minimum": 0,
                                                        "maximum": MAX_AGE_MS,
                                                        "description": "ms since it was shown/opened"}}}}}},
                        errors=(400, 413, 429)),
        },
        "/api/push/test": {
            "post": _op("Send a test push to your own subscription", auth=False, ok=202, resp={"type": "object"},
                        body={"type": "object", "required": ["endpoint"], "additionalProperties": False,
                              "properties": {"endpoint": {"type": "string", "maxLength": 2048}}},
                        errors=(400, 404, 429, 503)),
        },
    }
    paths.update(_integration_paths())
    paths["/api/push/subscriptions"]["post"]["responses"]["200"] = {
        "description": "Already subscribed: the same endpoint was updated", **_json({"type": "object"})}
    # The public Statuspage-compatible API (read-only, no authentication).
    for path, summary in (("summary.json", "Page, components, incidents, maintenances and overall status"),
                          ("status.json", "Overall status"), ("components.json", "Components"),
                          ("incidents.json", "Recent incidents"),
                          ("incidents/unresolved.json", "Unresolved incidents"),
                          ("scheduled-maintenances.json", "Scheduled maintenances"),
                          ("scheduled-maintenances/upcoming.json", "Upcoming maintenances"),
                          ("scheduled-maintenances/active.json", "Active maintenances"),
                          ("uptime.json", "90-day uptime per component and group (this page's own endpoint, "
                                          "not Statuspage's)")):
        paths[f"/api/v2/{path}"] = {"get": _op(summary, auth=False, resp={"type": "object"}, errors=())}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Status page API", "version": "1.0.0",
                 "description": "Admin API (bearer token) and the anonymous visitor push API."},
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                           "integrationToken": {
                                               "type": "http", "scheme": "bearer",
                                               "description": "The integration's own token (not an API token)"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }


ADMIN_ERRORS = (400, 401, 403, 404)


def _integration_schemas() -> dict[str, Any]:
    from ..integrations.service import INCIDENT_PLACEHOLDERS

    placeholders = ", ".join("{" + p + "}" for p in INCIDENT_PLACEHOLDERS)
    settings = {
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "enabled": {"type": "boolean", "description": "false pauses it: its alerts stop counting"},
        "component_label": {"type": "string", "minLength": 1, "maxLength": 64,
                            "description": "alert label naming the component (name, any case, or id); "
                                           "default component"},
        "component_id": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_ID,
                         "description": "heartbeat: the component it watches (required); alert kinds: where "
                                        "alerts that name no component go"},
        "mappings": {"type": "array", "maxItems": 100, "description": "tried before component_label",
                     "items": {"type": "object", "additionalProperties": False,
                               "required": ["label", "value", "component_id"],
                               "properties": {"label": {"type": "string", "minLength": 1, "maxLength": 64},
                                              "value": {"type": "string", "minLength": 1, "maxLength": 200},
                                              "component_id": {"type": "integer", "minimum": 1,
                                                               "maximum": MAX_ID}}}},
        "status_map": {"type": "object", "maxProperties": 50,
                       "description": "severity -> status, over the defaults critical: major_outage, warning: "
                                      "partial_outage, info: degraded_performance (anything else: major_outage); "
                                      "heartbeats use the key \"missed\"",
                       "additionalProperties": {"enum": list(COMPONENT_STATUSES)}},
        "create_components": {"type": "boolean", "description": "uptime_kuma: a new monitor becomes a component"},
        "interval_seconds": {"type": "integer", "minimum": 10, "maximum": 7 * 86400, "description": "heartbeat"},
        "grace_seconds": {"type": "integer", "minimum": 0, "maximum": 86400, "description": "heartbeat"},
        "incident": {"type": "object", "additionalProperties": False,
                     "description": f"open an incident when a component goes down (off by default); {placeholders}",
                     "properties": {"enabled": {"type": "boolean"}, "name": {"type": "string", "maxLength": 300},
                                    "body": {"type": "string", "maxLength": 2000},
                                    "resolve_body": {"type": "string", "maxLength": 2000}}},
    }
    return {
        "IntegrationInput": {"type": "object", "additionalProperties": False, "properties": settings},
        "IntegrationCreate": {"type": "object", "additionalProperties": False, "required": ["kind", "name"],
                              "properties": {"kind": {"enum": ["alertmanager", "grafana", "uptime_kuma",
                                                               "heartbeat"]}, **settings}},
        "Integration": {"type": "object", "required": ["id", "kind", "url"], "properties": {
            "id": {"type": "integer"}, "kind": {"type": "string"}, "name": {"type": "string"},
            "url": {"type": "string", "format": "uri", "description": "the receiver URL to paste into the tool"},
            "token": {"type": "string", "description": "only when created or rotated; stored hashed"},
            "url_with_token": {"type": "string", "description": "only when created or rotated: for tools that "
                                                                "cannot send an Authorization header"},
            "last_receipt": {"type": ["object", "null"]}, "firing_count": {"type": "integer"}}},
        "HookResult": {"type": "object", "properties": {
            "accepted": {"type": "integer"}, "changed": {"type": "array"}, "held": {"type": "array"},
            "ignored": {"type": "array"}, "warnings": {"type": "array"}, "notes": {"type": "array"}}},
    }


def _integration_paths() -> dict[str, Any]:
    integration = _ref("Integration")
    hook_ops = {
        "summary": "Receiver for the integration's tool: Alertmanager (POST, webhook version 4), Grafana "
                   "(POST/PUT), Uptime Kuma (POST JSON or form-data, GET), heartbeat (GET/POST/HEAD ping)",
        "security": [{"integrationToken": []}],
    }

    def hook(with_token: bool) -> dict[str, Any]:
        params = [_id_param("integration_id")]
        if with_token:
            params.append({"name": "token", "in": "path", "required": True, "schema": {"type": "string"}})
        item: dict[str, Any] = {"parameters": params}
        for method in ("get", "post", "put"):
            op = _op(hook_ops["summary"], resp=_ref("HookResult"), errors=(400, 401, 403, 405, 413, 429, 503))
            op["responses"]["202"] = {"description": "Valid, but nothing matched (what was ignored and why)",
                                      **_json(_ref("HookResult"))}
            op["security"] = [] if with_token else hook_ops["security"]
            if method != "get":
                op["requestBody"] = {"required": False, **_json({"type": "object"})}
            item[method] = op
        return item

    return {
        "/api/v1/integrations": {
            "get": _op("List integrations (admin)", resp={"type": "array", "items": integration},
                       errors=(401, 403)),
            "post": _op("Create an integration (admin); the answer carries its token, shown once",
                        body=_ref("IntegrationCreate"), ok=201, resp=integration, errors=(400, 401, 403)),
        },
        "/api/v1/integrations/{integration_id}": {
            "parameters": [_id_param("integration_id")],
            "get": _op("An integration with its firing alerts and recent payloads (admin)", resp=integration,
                       errors=ADMIN_ERRORS),
            "patch": _op("Change an integration (admin)", body=_ref("IntegrationInput"), resp=integration,
                         errors=ADMIN_ERRORS),
            "delete": _op("Delete an integration; components its alerts held down recover (admin)", ok=204,
                          errors=ADMIN_ERRORS),
        },
        "/api/v1/integrations/{integration_id}/rotate-token": {
            "parameters": [_id_param("integration_id")],
            "post": _op("New token (shown once); the old one stops working (admin)", resp=integration,
                        errors=ADMIN_ERRORS),
        },
        "/api/v1/components/{component_id}/hand-back": {
            "parameters": [_id_param("component_id")],
            "post": _op("Hand a component set by hand back to monitoring: it takes the status its firing "
                        "alerts want", resp=_ref("Component")),
        },
        "/api/hooks/{integration_id}": hook(False),
        "/api/hooks/{integration_id}/{token}": hook(True),
    }
