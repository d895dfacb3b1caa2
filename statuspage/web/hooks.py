"""Receivers for monitoring tools (integrations): thin — authenticate, parse, apply, answer in JSON.

`/api/hooks/<id>` takes `Authorization: Bearer <token>` (or HTTP Basic with the token as password);
`/api/hooks/<id>/<token>` is for tools that cannot set headers (the token never reaches a log line:
see integrations/logs.py). A wrong or missing token is a 401 that changes nothing.
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from flask_limiter.util import get_remote_address
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import RequestEntityTooLarge

from ..errors import ServiceError
from ..events import commit, rollback
from ..extensions import limiter
from ..integrations import service as svc
from ..integrations.alerts import Incoming
from ..integrations.models import Integration, IntegrationKind
from ..validation import decode_json
from .http import json_error

bp = Blueprint("hooks", __name__, url_prefix="/api/hooks")
METHODS = ["GET", "POST", "PUT"]
# Lock conflicts (PostgreSQL deadlock victim, SQLite busy) are retried here; then 503, which
# Alertmanager and Grafana retry too.
ATTEMPTS = 3


@bp.before_request
def receiver_body_limit():
    # Alertmanager groups can be large (~1 KB per alert); the app-wide limit is for forms and the API.
    request.max_content_length = current_app.config["INTEGRATION_MAX_BYTES"]


def _integration_key() -> str:
    return f"hook:{(request.view_args or {}).get('integration_id')}"


def _presented_token() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic" and request.authorization is not None:
        return request.authorization.password or None
    return None


@bp.route("/<int:integration_id>", methods=METHODS)
@bp.route("/<int:integration_id>/<token>", methods=METHODS)
@limiter.limit(lambda: current_app.config["RATELIMIT_INTEGRATION"], key_func=_integration_key,
               deduct_when=lambda response: response.status_code != 401)
@limiter.limit(lambda: current_app.config["RATELIMIT_INTEGRATION_AUTH"], key_func=get_remote_address,
               deduct_when=lambda response: response.status_code == 401)
def receive(integration_id: int, token: str | None = None):
    integration = svc.authenticate(integration_id, token if token is not None else _presented_token())
    if integration is None:
        response = json_error("missing or wrong integration token: send Authorization: Bearer <token>, "
                              "or use the receiver URL that ends with the token", 401)
        response.headers["WWW-Authenticate"] = 'Bearer realm="statuspage integrations"'
        return response
    if not integration.enabled:
        return json_error(f"integration {integration.id} is paused; enable it in the admin", 403)
    body = b""
    try:
        if request.method not in ("GET", "HEAD"):
            body = request.get_data(cache=True)
        payload = svc.parse_payload(integration, _incoming(integration, body))
    except RequestEntityTooLarge:
        return _refuse(integration, body, ServiceError(
            f"payload larger than {current_app.config['INTEGRATION_MAX_BYTES']} bytes", status_code=413))
    except ServiceError as exc:
        return _refuse(integration, body, exc)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            outcome = svc.receive(integration.id, payload)
            svc.record_receipt(integration.id, http_status=outcome.http_status, method=request.method, body=body,
                               result=outcome.to_dict())
            commit()
            break
        except ServiceError as exc:
            rollback()
            return _refuse(integration, body, exc)
        except OperationalError:
            rollback()
            if attempt == ATTEMPTS:
                current_app.logger.warning("integration %s: database busy, answered 503", integration_id)
                response = json_error("the database is busy; retry shortly", 503)
                response.headers["Retry-After"] = "5"
                return response
    return jsonify(outcome.to_dict()), outcome.http_status


def _incoming(integration: Integration, body: bytes) -> Incoming:
    """Transport decoding only: JSON body, multipart form (Uptime Kuma's "form-data"), or the query."""
    if integration.kind == IntegrationKind.HEARTBEAT or request.method in ("GET", "HEAD"):
        return Incoming(method=request.method, args=request.args.to_dict())
    if request.mimetype == "multipart/form-data":
        return Incoming(method=request.method, form=request.form.to_dict())
    if request.content_length is None and len(body) >= (request.max_content_length or 0):
        raise RequestEntityTooLarge()  # a chunked body cut at the limit: never parse half a payload
    return Incoming(method=request.method, json=decode_json(body))


def _refuse(integration: Integration, body: bytes, exc: ServiceError):
    """A refused payload changes no alert and no component; its receipt tells the admin why."""
    rollback()
    svc.record_refusal(integration.id, http_status=exc.status_code, method=request.method, body=body,
                       error=exc.message)
    commit()
    response = jsonify(exc.to_dict())
    response.status_code = exc.status_code
    if exc.status_code == 405:
        response.headers["Allow"] = ", ".join(svc.methods_for(integration.kind))
    return response
