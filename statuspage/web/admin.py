"""Admin web UI (Flask-Login sessions, CSRF on every form). Views turn forms into the same
dicts the JSON API sends and call the same service functions."""
from __future__ import annotations

from datetime import datetime
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from .. import components as components_svc
from .. import incidents as incidents_svc
from ..auth import authenticate
from ..errors import ServiceError
from ..events import commit, rollback
from ..extensions import limiter
from ..models import COMPONENT_STATUSES, INCIDENT_IMPACTS, INCIDENT_STATUSES, MAINTENANCE_STATUSES
from ..timeutil import site_tz, utcnow

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def require_login():
    if request.endpoint in ("admin.login",):
        return None
    if not current_user.is_authenticated:
        return redirect(url_for("admin.login", next=request.full_path))
    return None


def admin_only(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def _safe_next(target: str | None) -> str:
    # Browsers read "/\evil.example" as "//evil.example": backslashes and controls are refused too.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc \
            and "\\" not in target and target.isprintable():
        return target
    return url_for("admin.dashboard")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config.get("RATELIMIT_LOGIN") or "10 per minute; 50 per hour", methods=["POST"],
               deduct_when=lambda response: response.status_code == 401)
def login():
    if current_user.is_authenticated:
        return redirect(url_for("admin.dashboard"))
    error = None
    if request.method == "POST":
        user = authenticate(request.form.get("email", ""), request.form.get("password", ""))
        if user is None:
            error = "Wrong email or password."
        else:
            login_user(user, remember=bool(request.form.get("remember")))
            return redirect(_safe_next(request.args.get("next")))
    return render_template("admin/login.html", error=error), (401 if error else 200)


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    flash("Signed out.", "success")
    return redirect(url_for("admin.login"))


def run_service(fn, *args, success: str | None = None) -> Any:
    """Call a service function, commit, flash; on a service error flash it and return None."""
    try:
        result = fn(*args)
        commit()
    except ServiceError as exc:
        rollback()
        flash(exc.message, "error")
        return None
    if success:
        flash(success, "success")
    return result if result is not None else True


def _local_to_utc(value: str) -> str | None:
    """datetime-local inputs are in the site's time zone; the services want ISO UTC."""
    if not value:
        return None
    try:
        local = datetime.fromisoformat(value).replace(tzinfo=site_tz())
    except ValueError:
        return value  # the service reports it as invalid
    return local.isoformat()


def _component_form(form) -> dict[str, Any]:
    """Form fields `affected` (ids) and `status-<id>` into the API's `components` mapping."""
    changes: dict[str, str] = {}
    ids = []
    for cid in form.getlist("affected"):
        status = form.get(f"status-{cid}", "")
        if status:
            changes[cid] = status
        else:
            ids.append(cid)
    data: dict[str, Any] = {}
    if changes:
        data["components"] = changes
    if ids:
        data["component_ids"] = ids
    return data


@bp.get("/")
def dashboard():
    from ..publish import publish_state
    from ..summary import build_summary

    return render_template("admin/dashboard.html", s=build_summary(), snapshot=publish_state())


# --- components ---------------------------------------------------------------------------

@bp.get("/components")
def components():
    return render_template("admin/components.html", components=components_svc.list_components(),
                           groups=components_svc.list_groups(), statuses=COMPONENT_STATUSES)


def _component_data(form) -> dict[str, Any]:
    data: dict[str, Any] = {"name": form.get("name", ""), "description": form.get("description", "")}
    if form.get("status"):
        data["status"] = form["status"]
    group = form.get("group_id", "")
    data["group_id"] = int(group) if group.isdigit() else None
    if form.get("position", "").isdigit():
        data["position"] = int(form["position"])
    return data


@bp.post("/components")
def create_component():
    run_service(components_svc.create_component, _component_data(request.form), success="Component created.")
    return redirect(url_for("admin.components"))


@bp.post("/components/<int:component_id>")
def update_component(component_id: int):
    component = components_svc.get_component(component_id)
    run_service(components_svc.update_component, component, _component_data(request.form), success="Component saved.")
    return redirect(url_for("admin.components"))


@bp.post("/components/<int:component_id>/delete")
def delete_component(component_id: int):
    component = components_svc.get_component(component_id)
    run_service(components_svc.delete_component, component, success="Component deleted.")
    return redirect(url_for("admin.components"))


@bp.post("/groups")
def create_group():
    data = {"name": request.form.get("name", ""), "description": request.form.get("description", "")}
    run_service(components_svc.create_group, data, success="Group created.")
    return redirect(url_for("admin.components"))


@bp.post("/groups/<int:group_id>/delete")
def delete_group(group_id: int):
    run_service(components_svc.delete_group, components_svc.get_group(group_id), success="Group deleted.")
    return redirect(url_for("admin.components"))


# --- incidents ----------------------------------------------------------------------------

@bp.get("/incidents")
def incidents():
    return render_template("admin/incidents.html", incidents=incidents_svc.list_incidents(limit=100))


@bp.route("/incidents/new", methods=["GET", "POST"])
def new_incident():
    form = request.form
    if request.method == "POST":
        data = {
            "name": form.get("name", ""),
            "status": form.get("status", "investigating"),
            "impact": form.get("impact", "minor"),
            "body": form.get("body", ""),
            "notify": bool(form.get("notify")),
            **_component_form(form),
        }
        incident = run_service(incidents_svc.create_incident, data, success="Incident created.")
        if incident:
            return redirect(url_for("admin.incident", incident_id=incident.id))
    return render_template("admin/incident_new.html", form=form, components=components_svc.list_components(),
                           statuses=INCIDENT_STATUSES, impacts=INCIDENT_IMPACTS, component_statuses=COMPONENT_STATUSES,
                           **_preview_context())


@bp.route("/incidents/<int:incident_id>", methods=["GET", "POST"])
def incident(incident_id: int):
    item = incidents_svc.get_incident(incident_id, kind=None)
    if request.method == "POST":
        form = request.form
        data = {"status": form.get("status", item.status), "body": form.get("body", ""),
                "notify": bool(form.get("notify")), **_component_form(form)}
        if item.kind == "incident" and form.get("impact"):
            data["impact"] = form["impact"]
        if run_service(incidents_svc.post_update, item, data, success="Update posted."):
            return redirect(url_for("admin.incident", incident_id=item.id))
    statuses = MAINTENANCE_STATUSES if item.kind == "maintenance" else INCIDENT_STATUSES
    return render_template("admin/incident.html", incident=item, statuses=statuses, impacts=INCIDENT_IMPACTS,
                           components=components_svc.list_components(), component_statuses=COMPONENT_STATUSES,
                           form=request.form, **_preview_context())


def _preview_context() -> dict[str, Any]:
    from ..push.triggers import preview_payloads

    return {"trigger_previews": preview_payloads()}


# --- maintenances -------------------------------------------------------------------------

@bp.get("/maintenances")
def maintenances():
    items = incidents_svc.list_incidents(kind="maintenance", limit=100)
    return render_template("admin/maintenances.html", maintenances=items)


@bp.route("/maintenances/new", methods=["GET", "POST"])
def new_maintenance():
    form = request.form
    if request.method == "POST":
        data = {
            "name": form.get("name", ""),
            "body": form.get("body", ""),
            "scheduled_for": _local_to_utc(form.get("scheduled_for", "")),
            "scheduled_until": _local_to_utc(form.get("scheduled_until", "")),
            "auto_transition": bool(form.get("auto_transition")),
            "notify": bool(form.get("notify")),
            "component_ids": form.getlist("affected"),
        }
        maintenance = run_service(incidents_svc.create_maintenance, data, success="Maintenance scheduled.")
        if maintenance:
            return redirect(url_for("admin.incident", incident_id=maintenance.id))
    now = utcnow()
    return render_template("admin/maintenance_new.html", form=form, components=components_svc.list_components(),
                           now=now)


# --- push: settings, triggers, subscriptions, deliveries ------------------------------------

@bp.route("/push", methods=["GET", "POST"])
def push_settings():
    from ..push.keys import KeysUnavailable, current_keys
    from ..push.settings import get_settings, settings_dict, update_settings
    from ..push.triggers import PLACEHOLDERS, URGENCIES, ensure_triggers, update_triggers

    if request.method == "POST":
        if not current_user.is_admin:
            abort(403)
        form = request.form
        if form.get("section") == "settings":
            data = {"enabled": bool(form.get("enabled")), "icon_url": form.get("icon_url", ""),
                    "badge_url": form.get("badge_url", "")}
            if form.get("debounce_seconds", "").strip().isdigit():
                data["debounce_seconds"] = int(form["debounce_seconds"])
            run_service(update_settings, data, success="Push settings saved.")
        elif form.get("section") == "triggers":
            changes = {}
            for event_type in ensure_triggers():
                changes[event_type] = {
                    "enabled": bool(form.get(f"enabled-{event_type}")),
                    "title_template": form.get(f"title-{event_type}", ""),
                    "body_template": form.get(f"body-{event_type}", ""),
                    "urgency": form.get(f"urgency-{event_type}", "normal"),
                }
            run_service(update_triggers, changes, success="Triggers saved.")
        return redirect(url_for("admin.push_settings"))
    try:
        keys, key_error = current_keys(), None
    except KeysUnavailable as exc:
        keys, key_error = None, str(exc)
    settings = get_settings()
    triggers = ensure_triggers()
    commit()
    return render_template("admin/push.html", keys=keys, key_error=key_error, settings=settings_dict(settings),
                           triggers=triggers.values(), placeholders=PLACEHOLDERS, urgencies=URGENCIES,
                           **_preview_context())


@bp.get("/subscriptions")
def subscriptions():
    from ..models import SUBSCRIPTION_STATUSES
    from ..push.subscriptions import list_subscriptions, subscription_dict

    status = request.args.get("status")
    status = status if status in SUBSCRIPTION_STATUSES else None
    rows, counts = list_subscriptions(status, limit=200)
    return render_template("admin/subscriptions.html", subscriptions=[subscription_dict(s) for s in rows],
                           counts=counts, status=status, statuses=SUBSCRIPTION_STATUSES)


@bp.post("/subscriptions/<int:subscription_id>/test")
@admin_only
def test_subscription(subscription_id: int):
    from ..extensions import db
    from ..models import Subscription
    from ..push.delivery import queue_test_push

    sub = db.session.get(Subscription, subscription_id)
    if sub is None or sub.status != "active":
        flash("Only active subscriptions can receive a test.", "error")
    else:
        try:
            queue_test_push(sub.id)
            flash(f"Test push queued for subscription {sub.id}.", "success")
        except ServiceError as exc:
            flash(exc.message, "error")
    return redirect(url_for("admin.subscriptions"))


@bp.get("/events")
def events():
    from ..push.reports import event_dict, open_alerts, recent_events

    return render_template("admin/events.html", events=[event_dict(e) for e in recent_events(100)],
                           alerts=open_alerts())


@bp.post("/alerts/ack")
def ack_alerts():
    from sqlalchemy import update

    from ..extensions import db
    from ..models import AdminAlert

    db.session.execute(update(AdminAlert).where(AdminAlert.acknowledged_at.is_(None)).values(acknowledged_at=utcnow()))
    db.session.commit()
    flash("Alerts acknowledged.", "success")
    return redirect(url_for("admin.events"))
