"""Anonymous visitor push API under /api/push: public key, subscribe, unsubscribe, test push, and
the service worker's seen/opened reports."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from ..errors import NotFoundError, ValidationError
from ..events import commit
from ..extensions import limiter
from ..push.delivery import queue_test_push
from ..push.keys import public_key
from ..push.seen import parse_reports, record_reports
from ..push.settings import push_available
from ..push.subscriptions import choices_dict, find_subscription, subscribe, unsubscribe
from .api import json_body
from .http import json_error

bp = Blueprint("pushapi", __name__, url_prefix="/api/push")


def _limit(name: str, default: str):
    return lambda: current_app.config.get(name) or default


@bp.get("/public-key")
def get_public_key():
    key = public_key()
    if key is None:
        return json_error("push notifications are not configured on this status page yet", 503)
    if not push_available():
        return json_error("push notifications are turned off or unavailable on this status page", 503)
    response = jsonify({"publicKey": key})
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.post("/subscriptions")
@limiter.limit(_limit("RATELIMIT_SUBSCRIBE", "30 per minute; 300 per day"))
def create_subscription():
    if not push_available():
        return json_error("push notifications are turned off on this status page", 503)
    sub, created = subscribe(json_body(), request.headers.get("User-Agent"))
    commit()
    return jsonify({"id": sub.id, "status": sub.status, **choices_dict(sub)}), (201 if created else 200)


@bp.delete("/subscriptions")
@limiter.limit(_limit("RATELIMIT_UNSUBSCRIBE", "30 per minute"))
def delete_subscription():
    unsubscribe(json_body())
    commit()
    return "", 204


@bp.post("/test")
@limiter.limit(_limit("RATELIMIT_TEST_PUSH", "3 per minute; 20 per day"))
def test_push():
    data = json_body()
    endpoint = data.get("endpoint") if isinstance(data, dict) else None
    if not isinstance(endpoint, str) or not endpoint or set(data) - {"endpoint"}:
        raise ValidationError('send {"endpoint": "<your subscription endpoint>"}')
    sub = find_subscription(endpoint)
    if sub is None:
        raise NotFoundError("no subscription with that endpoint; subscribe first")
    queue_test_push(sub)
    return jsonify({"queued": True}), 202


@bp.post("/reports")
@limiter.limit(_limit("RATELIMIT_PUSH_REPORTS", "120 per minute; 2000 per day"))
def report_notifications():
    """The service worker reports notifications shown and opened, by event id only (push.seen)."""
    record_reports(parse_reports(json_body()))
    commit()
    # A bare 202: how many counted would tell anyone how many subscribers an event was sent to.
    return "", 202, {"Cache-Control": "no-store"}
