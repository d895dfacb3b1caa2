"""Admin REST API under /api/v1 (Authorization: Bearer <token>). Thin: parse, call a service, serialize."""
from __future__ import annotations

import json
from functools import wraps
from typing import Any

from flask import Blueprint, abort, g, jsonify, request

from .. import components as components_svc
from .. import incidents as incidents_svc
from ..auth import user_for_token
from ..errors import ServiceError, ValidationError
from ..events import commit
from ..serializers import component_dict, group_dict, incident_dict
from .http import json_error

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def json_body() -> Any:
    """The request's JSON body, or a 400 that says what is wrong with it."""
    raw = request.get_data(cache=True)
    limit = request.max_content_length
    if limit is not None and request.content_length is None and len(raw) >= limit:
        # A chunked body (no Content-Length) is cut at the limit by werkzeug without an error;
        # parsing the first 64 KB of a longer body would be wrong, so say it is too large.
        abort(413)
    if not raw.strip():
        raise ValidationError("request body is empty; send a JSON object")
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        raise ValidationError("request body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ValidationError(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ValidationError("malformed JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal longer than Python's 4300-digit limit
        raise ValidationError(f"malformed JSON: {str(exc)[:100]}") from None
    _reject_unstorable_text(data)
    return data


def _reject_unstorable_text(data: Any) -> None:
    """NUL and lone surrogates ("\\ud800" is valid JSON) cannot be stored in PostgreSQL or encoded
    as UTF-8; refuse them here, once, instead of failing deep in the database driver."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                raise ValidationError("strings must not contain NUL (\\u0000) characters")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValidationError("strings must be valid Unicode (no lone surrogates like \\ud800)") from None


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


def _id_arg(value: str) -> int:
    if not value.isdigit() or int(value) >= 2**31:
        raise ServiceError(f"{value!r} is not a valid id", status_code=404)
    return int(value)


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


@bp.get("/components/<component_id>")
@token_required
def get_component(component_id: str):
    return jsonify(component_dict(components_svc.get_component(_id_arg(component_id)), native=True))


@bp.patch("/components/<component_id>")
@token_required
def patch_component(component_id: str):
    component = components_svc.get_component(_id_arg(component_id))
    components_svc.update_component(component, json_body())
    commit()
    return jsonify(component_dict(component, native=True))


@bp.delete("/components/<component_id>")
@token_required
def delete_component(component_id: str):
    components_svc.delete_component(components_svc.get_component(_id_arg(component_id)))
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


@bp.patch("/component-groups/<group_id>")
@token_required
def patch_group(group_id: str):
    group = components_svc.get_group(_id_arg(group_id))
    components_svc.update_group(group, json_body())
    commit()
    return jsonify(group_dict(group, native=True))


@bp.delete("/component-groups/<group_id>")
@token_required
def delete_group(group_id: str):
    components_svc.delete_group(components_svc.get_group(_id_arg(group_id)))
    commit()
    return "", 204


# --- incidents ----------------------------------------------------------------------------

def _paging() -> tuple[int, int]:
    limit, offset = request.args.get("limit", "50"), request.args.get("offset", "0")
    if not limit.isdigit() or not offset.isdigit() or not 1 <= int(limit) <= 200 or int(offset) > 10**7:
        raise ValidationError("limit must be 1-200 and offset a non-negative integer")
    return int(limit), int(offset)


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


@bp.get("/incidents/<incident_id>")
@token_required
def get_incident(incident_id: str):
    return jsonify(incident_dict(incidents_svc.get_incident(_id_arg(incident_id)), native=True))


@bp.post("/incidents/<incident_id>/updates")
@token_required
def post_incident_update(incident_id: str):
    incident = incidents_svc.get_incident(_id_arg(incident_id))
    incidents_svc.post_update(incident, json_body())
    commit()
    return created(incident_dict(incident, native=True))


@bp.put("/incidents/<incident_id>/postmortem")
@token_required
def put_postmortem(incident_id: str):
    incident = incidents_svc.get_incident(_id_arg(incident_id))
    incidents_svc.publish_postmortem(incident, json_body())
    commit()
    return jsonify(incident_dict(incident, native=True))


@bp.delete("/incidents/<incident_id>/postmortem")
@token_required
def delete_postmortem(incident_id: str):
    incident = incidents_svc.get_incident(_id_arg(incident_id))
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


@bp.get("/maintenances/<maintenance_id>")
@token_required
def get_maintenance(maintenance_id: str):
    return jsonify(incident_dict(incidents_svc.get_incident(_id_arg(maintenance_id), kind="maintenance"), native=True))


@bp.patch("/maintenances/<maintenance_id>")
@token_required
def patch_maintenance(maintenance_id: str):
    maintenance = incidents_svc.get_incident(_id_arg(maintenance_id), kind="maintenance")
    incidents_svc.update_maintenance(maintenance, json_body())
    commit()
    return jsonify(incident_dict(maintenance, native=True))


@bp.post("/maintenances/<maintenance_id>/updates")
@token_required
def post_maintenance_update(maintenance_id: str):
    maintenance = incidents_svc.get_incident(_id_arg(maintenance_id), kind="maintenance")
    incidents_svc.post_update(maintenance, json_body())
    commit()
    return created(incident_dict(maintenance, native=True))


@bp.get("/openapi.json")
def openapi():
    from .openapi import build_openapi

    return jsonify(build_openapi())


# --- push: triggers, settings, subscriptions, events ------------------------------------------

@bp.get("/triggers")
@token_required
def get_triggers():
    from ..push.triggers import ensure_triggers, trigger_dict

    rows = ensure_triggers()
    commit()
    return jsonify([trigger_dict(t) for t in rows.values()])


@bp.put("/triggers")
@admin_required
def put_triggers():
    from ..push.triggers import trigger_dict, update_triggers

    rows = update_triggers(json_body())
    commit()
    return jsonify([trigger_dict(t) for t in rows])


@bp.get("/push/settings")
@token_required
def get_push_settings():
    from ..push.settings import get_settings, settings_dict

    settings = get_settings()
    commit()
    return jsonify(settings_dict(settings))


@bp.put("/push/settings")
@admin_required
def put_push_settings():
    from ..push.settings import settings_dict, update_settings

    settings = update_settings(json_body())
    commit()
    return jsonify(settings_dict(settings))


@bp.get("/subscriptions")
@token_required
def list_subscriptions():
    from ..models import SUBSCRIPTION_STATUSES
    from ..push.subscriptions import list_subscriptions as list_subs
    from ..push.subscriptions import subscription_dict

    limit, offset = _paging()
    status = request.args.get("status")
    if status is not None and status not in SUBSCRIPTION_STATUSES:
        raise ValidationError(f"status must be one of: {', '.join(SUBSCRIPTION_STATUSES)}")
    rows, counts = list_subs(status, limit, offset)
    return jsonify({"counts": counts, "subscriptions": [subscription_dict(s) for s in rows]})


@bp.post("/subscriptions/<subscription_id>/test")
@admin_required
def test_subscription(subscription_id: str):
    from ..models import Subscription
    from ..push.delivery import queue_test_push

    sub = db_get(Subscription, _id_arg(subscription_id), "subscription")
    if sub.status != "active":
        raise ValidationError(f"subscription {sub.id} is {sub.status}; only active ones can be tested")
    queue_test_push(sub.id)
    return jsonify({"queued": True, "subscription": sub.id}), 202


@bp.get("/events")
@token_required
def list_events():
    from ..push.reports import event_dict, recent_events

    limit, offset = _paging()
    return jsonify([event_dict(e) for e in recent_events(limit, offset)])


def db_get(model, ident: int, what: str):
    from ..errors import NotFoundError
    from ..extensions import db

    row = db.session.get(model, ident)
    if row is None:
        raise NotFoundError(f"{what} {ident} not found")
    return row
