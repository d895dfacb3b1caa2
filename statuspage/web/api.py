"""Admin REST API under /api/v1 (Authorization: Bearer <token>). Thin: parse, call a service, serialize."""
from __future__ import annotations

from functools import wraps
from typing import Any

from flask import Blueprint, abort, g, jsonify, request

from .. import components as components_svc
from .. import incidents as incidents_svc
from .. import validation as v
from ..auth import user_for_token
from ..errors import ValidationError
from ..events import commit
from ..integrations import service as integrations_svc
from ..models import SUBSCRIPTION_STATUSES
from ..push import subscriptions as subscriptions_svc
from ..push.audience import audience_from_query
from ..push.delivery import queue_test_push
from ..push.reports import event_dicts, recent_events
from ..push.settings import get_settings, settings_dict, update_settings
from ..push.subscriptions import subscription_dict
from ..push.triggers import ensure_triggers, trigger_dict, update_triggers
from ..serializers import component_dict, group_dict, incident_dict
from ..validation import parse_int
from .http import json_error
from .openapi import build_openapi

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def json_body() -> Any:
    """The request's JSON body, or a 400 that says what is wrong with it."""
    raw = request.get_data(cache=True)
    limit = request.max_content_length
    if limit is not None and request.content_length is None and len(raw) >= limit:
        # A chunked body (no Content-Length) is cut at the limit by werkzeug without an error;
        # parsing the first 64 KB of a longer body would be wrong, so say it is too large.
        abort(413)
    return v.decode_json(raw)


def token_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            response = json_error("missing bearer token: send Authorization: Bearer <token>", 401)
            response.headers["WWW-Authenticate"] = 'Bearer realm="statuspage"'
            return response
        user = user_for_token(token.strip())
        if user is None:
            response = json_error("invalid or revoked token", 401)
            response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            return response
        g.api_user = user
        return view(*args, **kwargs)

    return wrapper


def admin_required(view):
    @wraps(view)
    @token_required
    def wrapper(*args, **kwargs):
        if not g.api_user.is_admin:
            return json_error("this needs an admin token", 403)
        return view(*args, **kwargs)

    return wrapper


def created(data: dict):
    response = jsonify(data)
    response.status_code = 201
    return response


# --- components ---------------------------------------------------------------------------

@bp.get("/components")
@token_required
def list_components():
    return jsonify([component_dict(c, native=True) for c in components_svc.list_components()])


@bp.post("/components")
@token_required
def create_component():
    component = components_svc.create_component(json_body())
    commit()
    return created(component_dict(component, native=True))


@bp.get("/components/<int:component_id>")
@token_required
def get_component(component_id: int):
    return jsonify(component_dict(components_svc.get_component(component_id), native=True))


@bp.patch("/components/<int:component_id>")
@token_required
def patch_component(component_id: int):
    component = components_svc.get_component(component_id)
    components_svc.update_component(component, json_body())
    commit()
    return jsonify(component_dict(component, native=True))


@bp.delete("/components/<int:component_id>")
@token_required
def delete_component(component_id: int):
    components_svc.delete_component(components_svc.get_component(component_id))
    commit()
    return "", 204


@bp.get("/component-groups")
@token_required
def list_groups():
    return jsonify([group_dict(gr, native=True) for gr in components_svc.list_groups()])


@bp.post("/component-groups")
@token_required
def create_group():
    group = components_svc.create_group(json_body())
    commit()
    return created(group_dict(group, native=True))


@bp.patch("/component-groups/<int:group_id>")
@token_required
def patch_group(group_id: int):
    group = components_svc.get_group(group_id)
    components_svc.update_group(group, json_body())
    commit()
    return jsonify(group_dict(group, native=True))


@bp.delete("/component-groups/<int:group_id>")
@token_required
def delete_group(group_id: int):
    components_svc.delete_group(components_svc.get_group(group_id))
    commit()
    return "", 204


@bp.put("/component-order")
@token_required
def put_component_order():
    """One list's order, as the admin's drag and drop saves it: {"group_id": null | id, "order": ["g1", "c4"]}."""
    data = v.require_object(json_body(), ("group_id", "order"), what="order")
    group_id = v.integer(data, "group_id", minimum=1, maximum=v.MAX_ID)
    if group_id is not None:
        components_svc.get_group(group_id)
    order = data.get("order")
    if not isinstance(order, list) or not all(isinstance(t, str) for t in order) or len(order) > 1000:
        raise ValidationError('order must be a list of "g<group id>" / "c<component id>" strings', field="order")
    components_svc.reorder(group_id, order)
    commit()
    items = components_svc.top_level() if group_id is None else components_svc.group_members(group_id)
    return jsonify({"group_id": group_id, "order": [components_svc.order_token(i) for i in items]})


# --- incidents ----------------------------------------------------------------------------

def _paging() -> tuple[int, int]:
    limit = parse_int(request.args.get("limit", "50"), "limit", minimum=1, maximum=200)
    offset = parse_int(request.args.get("offset", "0"), "offset", minimum=0, maximum=10**7)
    return limit, offset


@bp.get("/incidents")
@token_required
def list_incidents():
    limit, offset = _paging()
    unresolved = request.args.get("unresolved") in ("1", "true")
    items = incidents_svc.list_incidents(unresolved_only=unresolved, limit=limit, offset=offset)
    return jsonify([incident_dict(i, native=True) for i in items])


@bp.post("/incidents")
@token_required
def create_incident():
    incident = incidents_svc.create_incident(json_body())
    commit()
    return created(incident_dict(incident, native=True))


@bp.get("/incidents/<int:incident_id>")
@token_required
def get_incident(incident_id: int):
    return jsonify(incident_dict(incidents_svc.get_incident(incident_id), native=True))


@bp.post("/incidents/<int:incident_id>/updates")
@token_required
def post_incident_update(incident_id: int):
    incident = incidents_svc.get_incident(incident_id)
    incidents_svc.post_update(incident, json_body())
    commit()
    return created(incident_dict(incident, native=True))


@bp.patch("/incidents/<int:incident_id>/updates/<int:update_id>")
@token_required
def patch_incident_update(incident_id: int, update_id: int):
    incident = incidents_svc.get_incident(incident_id)
    incidents_svc.edit_update(incident, update_id, json_body())
    commit()
    return jsonify(incident_dict(incident, native=True))


@bp.delete("/incidents/<int:incident_id>")
@token_required
def delete_incident(incident_id: int):
    incident = incidents_svc.get_incident(incident_id)
    incidents_svc.delete_incident(incident, restore_components=_restore_components_flag())
    commit()
    return "", 204


def _restore_components_flag() -> bool:
    """DELETE's `restore_components` (default true): a query parameter (`?restore_components=false`)
    or a JSON body `{"restore_components": false}`."""
    raw = request.args.get("restore_components")
    if raw is not None:
        value = {"true": True, "1": True, "false": False, "0": False}.get(raw.strip().lower())
        if value is None:
            raise ValidationError("restore_components must be true or false", field="restore_components")
        return value
    if not request.get_data(cache=True).strip():
        return True
    data = json_body()
    v.require_object(data, ("restore_components",), what="request")
    return bool(v.boolean(data, "restore_components", default=True))


@bp.put("/incidents/<int:incident_id>/postmortem")
@token_required
def put_postmortem(incident_id: int):
    incident = incidents_svc.get_incident(incident_id)
    incidents_svc.publish_postmortem(incident, json_body())
    commit()
    return jsonify(incident_dict(incident, native=True))


@bp.delete("/incidents/<int:incident_id>/postmortem")
@token_required
def delete_postmortem(incident_id: int):
    incident = incidents_svc.get_incident(incident_id)
    incidents_svc.remove_postmortem(incident)
    commit()
    return jsonify(incident_dict(incident, native=True))


# --- maintenances -------------------------------------------------------------------------

@bp.get("/maintenances")
@token_required
def list_maintenances():
    limit, offset = _paging()
    items = incidents_svc.list_incidents(kind="maintenance", limit=limit, offset=offset)
    return jsonify([incident_dict(m, native=True) for m in items])


@bp.post("/maintenances")
@token_required
def create_maintenance():
    maintenance = incidents_svc.create_maintenance(json_body())
    commit()
    return created(incident_dict(maintenance, native=True))


@bp.get("/maintenances/<int:maintenance_id>")
@token_required
def get_maintenance(maintenance_id: int):
    return jsonify(incident_dict(incidents_svc.get_incident(maintenance_id, kind="maintenance"), native=True))


@bp.patch("/maintenances/<int:maintenance_id>")
@token_required
def patch_maintenance(maintenance_id: int):
    maintenance = incidents_svc.get_incident(maintenance_id, kind="maintenance")
    incidents_svc.update_maintenance(maintenance, json_body())
    commit()
    return jsonify(incident_dict(maintenance, native=True))


@bp.post("/maintenances/<int:maintenance_id>/updates")
@token_required
def post_maintenance_update(maintenance_id: int):
    maintenance = incidents_svc.get_incident(maintenance_id, kind="maintenance")
    incidents_svc.post_update(maintenance, json_body())
    commit()
    return created(incident_dict(maintenance, native=True))


@bp.patch("/maintenances/<int:maintenance_id>/updates/<int:update_id>")
@token_required
def patch_maintenance_update(maintenance_id: int, update_id: int):
    maintenance = incidents_svc.get_incident(maintenance_id, kind="maintenance")
    incidents_svc.edit_update(maintenance, update_id, json_body())
    commit()
    return jsonify(incident_dict(maintenance, native=True))


@bp.delete("/maintenances/<int:maintenance_id>")
@token_required
def delete_maintenance(maintenance_id: int):
    incidents_svc.delete_incident(incidents_svc.get_incident(maintenance_id, kind="maintenance"))
    commit()
    return "", 204


@bp.get("/openapi.json")
def openapi():
    return jsonify(build_openapi())


# --- push: triggers, settings, subscriptions, events ------------------------------------------

@bp.get("/triggers")
@token_required
def get_triggers():
    rows = ensure_triggers()
    commit()
    return jsonify([trigger_dict(t) for t in rows.values()])


@bp.put("/triggers")
@admin_required
def put_triggers():
    rows = update_triggers(json_body())
    commit()
    return jsonify([trigger_dict(t) for t in rows])


@bp.get("/push/settings")
@token_required
def get_push_settings():
    settings = get_settings()
    commit()
    return jsonify(settings_dict(settings))


@bp.put("/push/settings")
@admin_required
def put_push_settings():
    settings = update_settings(json_body())
    commit()
    return jsonify(settings_dict(settings))


@bp.get("/push/audience")
@token_required
def get_push_audience():
    result = audience_from_query(request.args)
    commit()
    return jsonify(result)


@bp.get("/subscriptions")
@token_required
def list_subscriptions():
    limit, offset = _paging()
    status = request.args.get("status")
    if status is not None and status not in SUBSCRIPTION_STATUSES:
        raise ValidationError(f"status must be one of: {', '.join(SUBSCRIPTION_STATUSES)}")
    rows, counts = subscriptions_svc.list_subscriptions(status, limit, offset)
    return jsonify({"counts": counts, "subscriptions": [subscription_dict(s) for s in rows]})


@bp.post("/subscriptions/<int:subscription_id>/test")
@admin_required
def test_subscription(subscription_id: int):
    queue_test_push(subscriptions_svc.get_subscription(subscription_id))
    return jsonify({"queued": True, "subscription": subscription_id}), 202


@bp.get("/events")
@token_required
def list_events():
    limit, offset = _paging()
    return jsonify(event_dicts(recent_events(limit, offset)))



# --- integrations (monitoring sets component status) ----------------------------------------------

@bp.get("/integrations")
@admin_required
def list_integrations():
    return jsonify([integrations_svc.integration_dict(i) for i in integrations_svc.list_integrations()])


@bp.post("/integrations")
@admin_required
def create_integration():
    integration, token = integrations_svc.create_integration(json_body())
    commit()
    return created(integrations_svc.integration_dict(integration, token=token))


@bp.get("/integrations/<int:integration_id>")
@admin_required
def get_integration(integration_id: int):
    integration = integrations_svc.get_integration(integration_id)
    return jsonify(integrations_svc.integration_dict(integration, detail=True))


@bp.patch("/integrations/<int:integration_id>")
@admin_required
def patch_integration(integration_id: int):
    integration = integrations_svc.get_integration(integration_id)
    integration = integrations_svc.update_integration(integration, json_body())
    commit()
    return jsonify(integrations_svc.integration_dict(integration, detail=True))


@bp.delete("/integrations/<int:integration_id>")
@admin_required
def delete_integration(integration_id: int):
    integrations_svc.delete_integration(integrations_svc.get_integration(integration_id))
    commit()
    return "", 204


@bp.post("/integrations/<int:integration_id>/rotate-token")
@admin_required
def rotate_integration_token(integration_id: int):
    integration = integrations_svc.get_integration(integration_id)
    token = integrations_svc.rotate_token(integration)
    commit()
    return jsonify(integrations_svc.integration_dict(integration, token=token))


@bp.post("/components/<int:component_id>/hand-back")
@token_required
def hand_back_component(component_id: int):
    component = components_svc.get_component(component_id)
    outcome = integrations_svc.hand_back(component)
    commit()
    return jsonify({**component_dict(component, native=True), "changed": outcome.changed})
