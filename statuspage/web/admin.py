"""Admin web UI (Flask-Login sessions, CSRF on every form). Views turn forms into the same
dicts the JSON API sends and call the same service functions."""
from __future__ import annotations

from datetime import datetime
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from .. import auth
from .. import components as components_svc
from .. import incidents as incidents_svc
from ..audit import Actor, recent_entries
from ..errors import ServiceError
from ..events import commit, rollback
from ..extensions import limiter
from ..integrations import service as integrations_svc
from ..integrations.models import IntegrationKind
from ..models import (
    COMPONENT_STATUSES,
    INCIDENT_IMPACTS,
    INCIDENT_STATUSES,
    MAINTENANCE_STATUSES,
    SUBSCRIPTION_STATUSES,
    ComponentGroup,
)
from ..publish import publish_state
from ..push.audience import audience_from_query
from ..push.delivery import queue_test_push
from ..push.key_admin import generate_first_keys, key_management, rotate_keys
from ..push.keys import KeysUnavailable, current_keys
from ..push.reports import acknowledge_alerts, event_dicts, open_alerts, recent_events
from ..push.settings import get_settings, settings_dict, update_settings
from ..push.subscriptions import get_subscription, list_subscriptions, subscription_dict
from ..push.triggers import (
    PLACEHOLDERS,
    URGENCIES,
    ensure_triggers,
    has_impact,
    preview_payloads,
    update_triggers,
)
from ..summary import build_summary
from ..timeutil import site_tz, utcnow
from ..validation import ascii_int, parse_id, parse_int
from .formerrors import plain_message

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
        user = auth.authenticate(request.form.get("email", ""), request.form.get("password", ""))
        if user is None:
            error = "Wrong email or password."
        else:
            auth.sign_in(user, remember=bool(request.form.get("remember")),
                         user_agent=request.headers.get("User-Agent"))
            return redirect(_safe_next(request.args.get("next")))
    return render_template("admin/login.html", error=error), (401 if error else 200)


@bp.post("/logout")
@login_required
def logout():
    auth.sign_out(current_user)
    flash("Signed out.", "success")
    return redirect(url_for("admin.login"))


@bp.context_processor
def form_error_context() -> dict[str, Any]:
    return {"form_errors": g.get("form_errors", {})}


def run_service(fn, *args, success: str | None = None, scope: str = "", labels: dict[str, str] | None = None,
                **kwargs: Any) -> Any:
    """Call a service function, commit, flash; on a service error flash it in plain words, keep it
    for the field it is about (`form_errors[scope + field]`, shown next to that field when the view
    renders the form again) and return None."""
    try:
        result = fn(*args, **kwargs)
        commit()
    except ServiceError as exc:
        rollback()
        _keep_form_error(exc, scope, labels)
        return None
    if success:
        flash(success, "success")
    return result if result is not None else True


# Service fields shown under another form field: the composer's picker (`components`) carries both
# the statuses and the ticked components (`component_ids`).
FORM_FIELDS = {"component_ids": "components"}


def form_field(field: str | None) -> str:
    return FORM_FIELDS.get(field or "", field or "")


def confirmed() -> bool:
    """Destructive forms post twice: first without `confirm` (the answer is a page that says what
    will be lost), then from that page with confirm=yes. Works without JavaScript."""
    return request.form.get("confirm") == "yes"


def confirm_page(*, title: str, lines: list[str], action: str, button: str, back: str,
                 checkboxes: list[dict[str, Any]] | None = None):
    return render_template("admin/confirm.html", title=title, lines=lines, action=action, button=button,
                           back=back, checkboxes=checkboxes)


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
    """Form fields `affected` (ids) and `status-<id>` into the API's `components` mapping. Picking
    a status selects its component, ticked or not: a chosen status is never silently dropped."""
    changes: dict[str, str] = {}
    for key, status in form.items(multi=True):
        if key.startswith("status-") and status:
            changes[key.removeprefix("status-")] = status
    ids = [cid for cid in form.getlist("affected") if cid not in changes]
    data: dict[str, Any] = {}
    if changes:
        data["components"] = changes
    if ids:
        data["component_ids"] = ids
    return data


@bp.get("/")
def dashboard():
    return render_template("admin/dashboard.html", s=build_summary(), snapshot=publish_state())


# --- components ---------------------------------------------------------------------------

@bp.get("/components")
def components():
    return _components_page()


def _components_page(form: Any = None):
    """The components page; after a refused form, with that form's values and its field messages."""
    order = [(item, components_svc.group_members(item.id) if isinstance(item, ComponentGroup) else None)
             for item in components_svc.top_level()]
    return render_template("admin/components.html", components=components_svc.list_components(),
                           groups=components_svc.list_groups(), statuses=COMPONENT_STATUSES,
                           monitoring=integrations_svc.monitoring_overview(), form=form or {}, order=order)


def _form_data(build, form, scope: str) -> dict[str, Any] | None:
    """`build(form)` (the form as the service's dict); a field it refuses is kept like a service error."""
    try:
        return build(form)
    except ServiceError as exc:
        _keep_form_error(exc, scope)
        return None


def _keep_form_error(exc: ServiceError, scope: str = "", labels: dict[str, str] | None = None) -> None:
    """Flash a service error in plain words and keep it for the field it is about."""
    message = plain_message(exc.message, exc.field, labels)
    g.setdefault("form_errors", {})[scope + form_field(exc.field)] = message
    flash(message, "error")


def _component_data(form) -> dict[str, Any]:
    data: dict[str, Any] = {"name": form.get("name", ""), "description": form.get("description", "")}
    # Only a status the admin changed is sent: setting one by hand takes it from monitoring, and the
    # form also carries the status it showed (monitoring may have changed it since the page loaded).
    if form.get("status") and form.get("status") != form.get("shown_status"):
        data["status"] = form["status"]
    group = form.get("group_id", "").strip()
    data["group_id"] = parse_id(group, "group_id") if group else None
    if form.get("position", "").strip():
        data["position"] = parse_int(form["position"].strip(), "position")
    if form.get("showcase_field"):  # the checkbox is on the form (an unchecked one sends nothing)
        data["showcase"] = bool(form.get("showcase"))
    return data


@bp.post("/components")
def create_component():
    data = _form_data(_component_data, request.form, "new-")
    if data is not None and run_service(components_svc.create_component, data, success="Component created.",
                                        scope="new-"):
        return redirect(url_for("admin.components"))
    return _components_page(request.form)


@bp.post("/components/<int:component_id>")
def update_component(component_id: int):
    component = components_svc.get_component(component_id)
    scope = f"c{component_id}-"
    data = _form_data(_component_data, request.form, scope)
    if data is not None and run_service(components_svc.update_component, component, data,
                                        success="Component saved.", scope=scope):
        return redirect(url_for("admin.components") + f"#component-{component_id}")
    return _components_page(request.form)


@bp.post("/components/<int:component_id>/delete")
def delete_component(component_id: int):
    component = components_svc.get_component(component_id)
    if not confirmed():
        return confirm_page(
            title=f"Delete the component “{component.name}”?",
            lines=["It disappears from the status page, its 90-day uptime history is deleted, and subscribers "
                   "who chose only this component stop getting its notifications.",
                   "This cannot be undone."],
            action=url_for("admin.delete_component", component_id=component.id),
            button="Delete component", back=url_for("admin.components"))
    run_service(components_svc.delete_component, component, success="Component deleted.")
    return redirect(url_for("admin.components"))


def _order_item(kind: str, raw_id: str):
    item_id = parse_id(raw_id, "id")
    if kind == "group":
        return components_svc.get_group(item_id)
    if kind == "component":
        return components_svc.get_component(item_id)
    abort(400)


@bp.post("/order/move")
def move_order_item():
    """Move up / Move down (keyboard and no-JS ordering; admin.js posts the same form in the background)."""
    form = request.form
    item = _order_item(form.get("kind", ""), form.get("id", ""))
    place = run_service(components_svc.move_item, item, form.get("direction", ""))
    token = components_svc.order_token(item)
    if request.headers.get("X-Requested-With") == "fetch":
        return ({"place": place}, 200) if place else ({"error": "not moved"}, 400)
    return redirect(url_for("admin.components") + f"#order-{token}")


@bp.post("/order")
def save_order():
    """A list's new order after a drag and drop (admin.js)."""
    form = request.form
    scope = form.get("scope", "")
    group_id = None if scope == "top" else parse_id(scope, "scope")
    tokens = [t for t in form.get("order", "").split(",") if t]
    if run_service(components_svc.reorder, group_id, tokens):
        return {"saved": True}, 200
    return {"error": "The list changed since the page was loaded: reload it and try again."}, 409


@bp.post("/components/<int:component_id>/hand-back")
def hand_back_component(component_id: int):
    component = components_svc.get_component(component_id)
    run_service(integrations_svc.hand_back, component,
                success=f"{component.name} is back with monitoring: its status follows the firing alerts.")
    return redirect(url_for("admin.components"))


@bp.post("/groups")
def create_group():
    data = {"name": request.form.get("name", ""), "description": request.form.get("description", "")}
    if run_service(components_svc.create_group, data, success="Group created.", scope="group-"):
        return redirect(url_for("admin.components"))
    return _components_page(request.form)


@bp.post("/groups/<int:group_id>/delete")
def delete_group(group_id: int):
    group = components_svc.get_group(group_id)
    if not confirmed():
        return confirm_page(
            title=f"Delete the group “{group.name}”?",
            lines=[f"Its {len(group.components)} component(s) are kept and shown without a group.",
                   "This cannot be undone."],
            action=url_for("admin.delete_group", group_id=group.id),
            button="Delete group", back=url_for("admin.components"))
    run_service(components_svc.delete_group, group, success="Group deleted.")
    return redirect(url_for("admin.components"))


# --- incidents ----------------------------------------------------------------------------

INCIDENT_LABELS = {"name": "the title"}

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
        incident = run_service(incidents_svc.create_incident, data, success="Incident created.",
                               labels=INCIDENT_LABELS)
        if incident:
            return redirect(url_for("admin.incident", incident_id=incident.id))
    return render_template("admin/incident_new.html", form=form,
                           statuses=INCIDENT_STATUSES, impacts=INCIDENT_IMPACTS, component_statuses=COMPONENT_STATUSES,
                           notify_events=["incident.created"], picker=_picker_layout(), **_preview_context())


@bp.route("/incidents/<int:incident_id>", methods=["GET", "POST"])
def incident(incident_id: int):
    item = incidents_svc.get_incident(incident_id, kind=None)
    if request.method == "POST":
        form = request.form
        data = {"status": form.get("status", item.status), "body": form.get("body", ""),
                "notify": bool(form.get("notify")), **_component_form(form)}
        if item.kind == "incident" and form.get("impact"):
            data["impact"] = form["impact"]
        if item.kind == "incident" and form.get("restore_components_field"):
            data["restore_components"] = bool(form.get("restore_components"))
        if run_service(incidents_svc.post_update, item, data, success="Update posted.", labels=INCIDENT_LABELS):
            return redirect(url_for("admin.incident", incident_id=item.id))
    return _incident_page(item, form=request.form)


def _incident_page(item, *, form, edit: dict[str, Any] | None = None) -> str:
    """The incident's admin page; `form` refills the composer, `edit` ({"id", "body"}) an update's
    edit form, after a refused submission (the messages stand next to their fields)."""
    statuses = MAINTENANCE_STATUSES if item.kind == "maintenance" else INCIDENT_STATUSES
    # "postmortem" comes with publishing one (the Postmortem form), not with an update.
    statuses = [st for st in statuses if st != "postmortem" or item.status == "postmortem"]
    events = ["incident.updated", "incident.resolved"] if item.kind == "incident" \
        else ["maintenance.started", "maintenance.completed"]
    return render_template("admin/incident.html", incident=item, statuses=statuses, impacts=INCIDENT_IMPACTS,
                           component_statuses=COMPONENT_STATUSES,
                           form=form, edit=edit or {}, notify_events=events, picker=_picker_layout(),
                           **_preview_context())


@bp.post("/incidents/<int:incident_id>/postmortem")
def postmortem(incident_id: int):
    item = incidents_svc.get_incident(incident_id)
    data = {"body": request.form.get("postmortem_body", ""), "notify": bool(request.form.get("postmortem_notify"))}
    if run_service(incidents_svc.publish_postmortem, item, data, success="Postmortem published.",
                   scope="postmortem_", labels={"body": "the postmortem"}):
        return redirect(url_for("admin.incident", incident_id=item.id) + "#postmortem")
    return _incident_page(item, form={"postmortem_body": data["body"]})


@bp.post("/incidents/<int:incident_id>/postmortem/delete")
def delete_postmortem(incident_id: int):
    item = incidents_svc.get_incident(incident_id)
    if not confirmed():
        return confirm_page(
            title=f"Remove the postmortem of “{item.name}”?",
            lines=["Its text is deleted and the incident is shown as resolved again. This cannot be undone."],
            action=url_for("admin.delete_postmortem", incident_id=item.id), button="Remove postmortem",
            back=url_for("admin.incident", incident_id=item.id) + "#postmortem")
    run_service(incidents_svc.remove_postmortem, item, success="Postmortem removed.")
    return redirect(url_for("admin.incident", incident_id=item.id) + "#postmortem")


@bp.post("/incidents/<int:incident_id>/updates/<int:update_id>/edit")
def edit_update(incident_id: int, update_id: int):
    item = incidents_svc.get_incident(incident_id, kind=None)
    data = {"body": request.form.get("body", ""), "notify": bool(request.form.get("notify"))}
    if run_service(incidents_svc.edit_update, item, update_id, data, success="Update edited.",
                   scope=f"edit-{update_id}-", labels={"body": "the corrected text"}):
        return redirect(url_for("admin.incident", incident_id=item.id) + f"#update-{update_id}")
    return _incident_page(item, form={}, edit={"id": update_id, "body": data["body"]})


@bp.post("/incidents/<int:incident_id>/delete")
def delete_incident(incident_id: int):
    item = incidents_svc.get_incident(incident_id, kind=None)
    what = "incident" if item.kind == "incident" else "maintenance"
    listing = url_for("admin.incidents" if item.kind == "incident" else "admin.maintenances")
    restorable = item.kind == "incident" and not item.is_resolved and bool(item.components)
    if not confirmed():
        counts = incidents_svc.notified_count(item)
        if counts["sent"]:
            notified = (f"Subscribers were already notified: {counts['sent']} notification(s) went out about "
                        "it. Deleting cannot recall them; they will lead to a page that no longer exists.")
        elif counts["events"]:
            notified = ("Notifications about it were already sent or are on their way to subscribers; deleting "
                        "cannot recall them.")
        else:
            notified = "No notification about it was sent."
        keep = "" if restorable else " Components keep their current status."
        return confirm_page(
            title=f"Delete the {what} “{item.name}”?",
            lines=[f"Its {len(item.updates)} update(s) and its public page are deleted.{keep}", notified,
                   "To correct a mistake, edit the update's text instead. This cannot be undone."],
            action=url_for("admin.delete_incident", incident_id=item.id),
            button=f"Delete {what}", back=url_for("admin.incident", incident_id=item.id),
            checkboxes=[{"name": "restore_components", "checked": True,
                         "label": "Set its components back to Operational (as resolving would; components under "
                                  "maintenance or in another open incident are left alone)"}] if restorable else None)
    restore = bool(request.form.get("restore_components"))
    if run_service(incidents_svc.delete_incident, item, restore_components=restore,
                   success=f"{what.capitalize()} deleted."):
        return redirect(listing)
    return redirect(url_for("admin.incident", incident_id=item.id))


def _picker_layout() -> list[tuple[Any, list[Any]]]:
    """Components grouped for the composer's picker: each group (in page order) with its members,
    then the components without a group."""
    by_group: dict[int | None, list[Any]] = {}
    for component in components_svc.list_components():
        by_group.setdefault(component.group_id, []).append(component)
    layout: list[tuple[Any, list[Any]]] = [(group, by_group[group.id]) for group in components_svc.list_groups()
                                           if group.id in by_group]
    if None in by_group:
        layout.append((None, by_group[None]))
    return layout


def _preview_context() -> dict[str, Any]:
    return {"trigger_previews": preview_payloads()}


# --- maintenances -------------------------------------------------------------------------

MAINTENANCE_LABELS = {"name": "the title", "body": "the details"}
MAINTENANCE_EVENTS = ["maintenance.scheduled", "maintenance.reminder", "maintenance.started", "maintenance.completed"]

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
            "auto_transition_to_maintenance_state": bool(form.get("auto_transition_to_maintenance_state")),
            "notify": bool(form.get("notify")),
            "component_ids": form.getlist("affected"),
            "allow_past": bool(form.get("allow_past")),
        }
        maintenance = run_service(incidents_svc.create_maintenance, data, success="Maintenance scheduled.",
                                  labels=MAINTENANCE_LABELS)
        if maintenance:
            return redirect(url_for("admin.incident", incident_id=maintenance.id))
    errors = g.get("form_errors", {})
    ask_past = any("in the past" in errors.get(f, "") for f in ("scheduled_for", "scheduled_until"))
    return render_template("admin/maintenance_new.html", form=form,
                           now=utcnow(), ask_past=ask_past, notify_events=MAINTENANCE_EVENTS,
                           picker=_picker_layout(), **_preview_context())


# --- push: settings, triggers, subscriptions, deliveries ------------------------------------

def _push_settings_data(form) -> dict[str, Any]:
    data: dict[str, Any] = {"enabled": bool(form.get("enabled")), "icon_url": form.get("icon_url", ""),
                            "badge_url": form.get("badge_url", "")}
    if "payload_format" in form:
        data["payload_format"] = form["payload_format"]
    if form.get("debounce_seconds", "").strip():
        data["debounce_seconds"] = parse_int(form["debounce_seconds"].strip(), "debounce_seconds")
    if "maintenance_reminder_minutes" in form:  # text, "1440, 60"; empty = no reminders
        data["maintenance_reminder_minutes"] = form["maintenance_reminder_minutes"]
    return data


def _trigger_changes(form) -> dict[str, dict[str, Any]]:
    changes = {}
    for event_type in ensure_triggers():
        changes[event_type] = {
            "enabled": bool(form.get(f"enabled-{event_type}")),
            "title_template": form.get(f"title-{event_type}", ""),
            "body_template": form.get(f"body-{event_type}", ""),
            "urgency": form.get(f"urgency-{event_type}", "normal"),
            "component_ids": form.getlist(f"components-{event_type}"),
        }
        if has_impact(event_type):
            changes[event_type]["min_impact"] = form.get(f"min_impact-{event_type}") or None
    return changes


def _save_triggers(changes: dict[str, dict[str, Any]]) -> None:
    """update_triggers, one event at a time so that an error names its row: its field becomes
    `<field>-<event type>` (the form's control names), in the form's words."""
    for event_type, row in changes.items():
        try:
            update_triggers({event_type: row})
        except ServiceError as exc:
            exc.message = plain_message(exc.message, exc.field)
            exc.field = f"{exc.field or 'title_template'}-{event_type}"
            raise


@bp.route("/push", methods=["GET", "POST"])
def push_settings():
    typed_settings: dict[str, Any] = {}
    typed_triggers: dict[str, dict[str, Any]] = {}
    if request.method == "POST":
        if not current_user.is_admin:
            abort(403)
        form = request.form
        if form.get("section") == "settings":
            data = _form_data(_push_settings_data, form, "")
            if data is not None and run_service(update_settings, data, success="Push settings saved."):
                return redirect(url_for("admin.push_settings"))
            # Shown again as typed, with the message next to its field.
            typed_settings = {"enabled": bool(form.get("enabled")), "icon_url": form.get("icon_url", ""),
                              "badge_url": form.get("badge_url", ""),
                              "debounce_seconds": form.get("debounce_seconds", ""),
                              "payload_format": form.get("payload_format", "auto"),
                              "maintenance_reminder_minutes": form.get("maintenance_reminder_minutes", "")}
        elif form.get("section") == "triggers":
            changes = _trigger_changes(form)
            if run_service(_save_triggers, changes, success="Triggers saved."):
                return redirect(url_for("admin.push_settings"))
            typed_triggers = changes
        else:
            return redirect(url_for("admin.push_settings"))
    try:
        keys, key_error = current_keys(), None
    except KeysUnavailable as exc:
        keys, key_error = None, str(exc)
    settings = {**settings_dict(get_settings()), **typed_settings}
    triggers = ensure_triggers()
    key_admin = key_management()
    commit()
    rows = [_typed_trigger(t, typed_triggers.get(t.event_type)) for t in triggers.values()]
    return render_template("admin/push.html", keys=keys, key_error=key_error, key_admin=key_admin,
                           settings=settings,
                           triggers=rows, placeholders=PLACEHOLDERS, urgencies=URGENCIES,
                           impacts=[i for i in INCIDENT_IMPACTS if i != "none"], has_impact=has_impact,
                           components=components_svc.list_components(), **_preview_context())


def _typed_trigger(trigger, typed: dict[str, Any] | None) -> dict[str, Any]:
    """A trigger row for the form: as stored, or as the admin typed it when saving failed."""
    row = {"event_type": trigger.event_type, "enabled": trigger.enabled, "title_template": trigger.title_template,
           "body_template": trigger.body_template, "urgency": trigger.urgency, "min_impact": trigger.min_impact,
           "component_ids": trigger.component_ids or []}
    if typed:
        ids = [ascii_int(i) for i in typed.get("component_ids") or []]
        row.update({k: typed[k] for k in ("enabled", "title_template", "body_template", "urgency") if k in typed},
                   min_impact=typed.get("min_impact"), component_ids=[i for i in ids if i is not None])
    return row


@bp.post("/push/keys/generate")
@admin_only
def generate_push_keys():
    row = run_service(generate_first_keys, Actor.of(current_user), request.form.get("subject", "").strip() or None)
    if row:
        flash("VAPID keys generated: visitors can subscribe now.", "success")
    return redirect(url_for("admin.push_settings"))


@bp.route("/push/keys/rotate", methods=["GET", "POST"])
@admin_only
def rotate_push_keys():
    """Rotation is confirmed on a page of its own that names how many subscriptions expire; the
    count is sent back and checked, so nobody confirms a number that is no longer true."""
    if request.method == "POST":
        confirmed = ascii_int(request.form.get("confirm_expiring", "").strip())
        if confirmed is None:
            flash("Confirm the rotation with the button below.", "error")
        else:
            result = run_service(rotate_keys, Actor.of(current_user), confirmed,
                                 request.form.get("subject", "").strip() or None)
            if result:
                flash(f"VAPID keys rotated: {result[1]} subscription(s) expired. Browsers with the page open "
                      "resubscribe with the new key on their next visit.", "success")
                return redirect(url_for("admin.push_settings"))
    state = key_management()
    commit()
    if not state["can_rotate"]:
        flash("There are no stored VAPID keys to rotate." if not state["from_environment"]
              else "The keys come from the environment (VAPID_PUBLIC_KEY / VAPID_PRIVATE_KEY); change them there.",
              "error")
        return redirect(url_for("admin.push_settings"))
    return render_template("admin/push_rotate.html", key_admin=state)


@bp.get("/push/audience")
def push_audience():
    """The composer's live count of who would get the message (static/js/admin-preview.js)."""
    try:
        result = audience_from_query(request.args)
    except ServiceError as exc:
        rollback()
        return jsonify(exc.to_dict()), exc.status_code
    commit()
    return jsonify(result)


@bp.get("/subscriptions")
def subscriptions():
    status = request.args.get("status")
    status = status if status in SUBSCRIPTION_STATUSES else None
    rows, counts = list_subscriptions(status, limit=200)
    return render_template("admin/subscriptions.html", subscriptions=[subscription_dict(s) for s in rows],
                           counts=counts, status=status, statuses=SUBSCRIPTION_STATUSES)


@bp.post("/subscriptions/<int:subscription_id>/test")
@admin_only
def test_subscription(subscription_id: int):
    try:
        queue_test_push(get_subscription(subscription_id))
        flash(f"Test push queued for subscription {subscription_id}.", "success")
    except ServiceError as exc:
        flash(exc.message, "error")
    return redirect(url_for("admin.subscriptions"))


@bp.get("/events")
def events():
    return render_template("admin/events.html", events=event_dicts(recent_events(100)),
                           alerts=open_alerts())


@bp.post("/alerts/ack")
@admin_only
def ack_alerts():
    run_service(acknowledge_alerts, success="Alerts acknowledged.")
    return redirect(url_for("admin.events"))


# --- your account, and the admin log ---------------------------------------------------------

@bp.get("/account")
def account():
    return render_template("admin/account.html", sessions=auth.list_sessions(current_user),
                           current_session=g.get("user_session_id"), min_password=auth.MIN_PASSWORD)


@bp.post("/account/password")
def change_password():
    """Your own password only (the current one is required); users are managed on the server."""
    form = request.form
    ended = run_service(auth.change_own_password, current_user, form.get("current_password", ""),
                        form.get("new_password", ""), form.get("confirm_password", ""))
    if ended is not None:
        flash(f"Password changed. {ended} other sign-in(s) of yours ended.", "success")
    return redirect(url_for("admin.account"))


@bp.post("/account/sign-out-others")
def sign_out_others():
    result = run_service(auth.sign_out_everywhere, current_user, actor=Actor.of(current_user), keep_current=True)
    if result:
        flash(f"Signed out everywhere else ({result[0]} sign-in(s) ended).", "success")
    return redirect(url_for("admin.account"))


@bp.get("/log")
@admin_only
def admin_log():
    return render_template("admin/log.html", entries=recent_entries(200))
# --- integrations -------------------------------------------------------------------------------

MAPPING_ROWS_BLANK = 3


def _rows(form, count_field: str) -> range:
    """Indexes of a form's repeated rows (mapping rules, severities); the count comes with the form."""
    count = ascii_int(form.get(count_field, ""))
    return range(count) if count is not None and count < 1000 else range(0)


def _form_number(form, name: str) -> Any:
    """An integer field as the API's PATCH body has it: a number when it is one (ASCII digits), else
    the text as typed, which the service refuses with a message naming the field."""
    value = form.get(name, "").strip()
    number = ascii_int(value)
    return number if number is not None and len(value) < 10 else (value or None)


def _integration_form(form, kind: str) -> dict[str, Any]:
    """The settings form as the API's PATCH body (the service validates it)."""
    def number(name: str) -> Any:
        return _form_number(form, name)

    data: dict[str, Any] = {"name": form.get("name", ""), "enabled": bool(form.get("enabled")),
                            "component_id": number("component_id")}
    if kind == IntegrationKind.HEARTBEAT:
        data["interval_seconds"] = number("interval_seconds")
        data["grace_seconds"] = number("grace_seconds")
        data["status_map"] = {integrations_svc.MISSED_SEVERITY: form.get("missed_status", "major_outage")}
    else:
        data["component_label"] = form.get("component_label", "").strip() or "component"
        data["mappings"] = [
            {"label": form.get(f"map-label-{i}", ""), "value": form.get(f"map-value-{i}", ""),
             "component_id": number(f"map-component-{i}")}
            for i in _rows(form, "mapping_rows")
            if form.get(f"map-label-{i}", "").strip() or form.get(f"map-value-{i}", "").strip()
        ]
        data["status_map"] = {form.get(f"sev-{i}", "").strip(): form.get(f"sev-status-{i}", "")
                              for i in _rows(form, "severity_rows") if form.get(f"sev-{i}", "").strip()}
    if kind == IntegrationKind.UPTIME_KUMA:
        data["create_components"] = bool(form.get("create_components"))
    data["incident"] = {"enabled": bool(form.get("incident_enabled")), "name": form.get("incident_name", ""),
                        "body": form.get("incident_body", ""), "resolve_body": form.get("incident_resolve_body", "")}
    return data


def _integration_page(integration, *, token: str | None = None, code: int = 200):
    data = integrations_svc.integration_dict(integration, detail=True)
    status_rows = sorted(data.get("status_map", {}).items())
    return render_template(
        "admin/integration.html", i=data, token=token,
        url_with_token=integrations_svc.receiver_url_with_token(integration, token) if token else None,
        components=components_svc.list_components(), statuses=COMPONENT_STATUSES, status_rows=status_rows,
        blank_rows=MAPPING_ROWS_BLANK, placeholders=integrations_svc.INCIDENT_PLACEHOLDERS,
    ), code


@bp.route("/integrations", methods=["GET", "POST"])
@admin_only
def integrations():
    if request.method == "POST":
        form = request.form
        kind = form.get("kind", "")
        data: dict[str, Any] = {"kind": kind, "name": form.get("name", "")}
        if form.get("component_id", "").strip():
            data["component_id"] = _form_number(form, "component_id")
        result = run_service(integrations_svc.create_integration, data)
        if result:
            integration, token = result
            flash("Integration created. Copy its token now: it is shown only this once.", "success")
            return _integration_page(integration, token=token, code=201)
    rows = [integrations_svc.integration_dict(i) for i in integrations_svc.list_integrations()]
    return render_template("admin/integrations.html", integrations=rows, kinds=list(IntegrationKind),
                           components=components_svc.list_components())


@bp.route("/integrations/<int:integration_id>", methods=["GET", "POST"])
@admin_only
def integration(integration_id: int):
    item = integrations_svc.get_integration(integration_id)
    if request.method == "POST":
        data = _integration_form(request.form, item.kind)
        run_service(integrations_svc.update_integration, item, data, success="Integration saved.")
        return redirect(url_for("admin.integration", integration_id=integration_id))
    return _integration_page(item)


@bp.post("/integrations/<int:integration_id>/rotate")
@admin_only
def rotate_integration(integration_id: int):
    item = integrations_svc.get_integration(integration_id)
    if not confirmed():
        return confirm_page(
            title=f"Make a new token for “{item.name}”?",
            lines=["The current token stops working at once: the monitoring tool's webhook fails until you "
                   "give it the new one."],
            action=url_for("admin.rotate_integration", integration_id=item.id), button="Make a new token",
            back=url_for("admin.integration", integration_id=item.id))
    token = run_service(integrations_svc.rotate_token, item)
    if not isinstance(token, str):
        return redirect(url_for("admin.integration", integration_id=integration_id))
    flash("New token made; the old one no longer works. Copy it now: it is shown only this once.", "success")
    return _integration_page(item, token=token)


@bp.post("/integrations/<int:integration_id>/delete")
@admin_only
def delete_integration(integration_id: int):
    item = integrations_svc.get_integration(integration_id)
    if not confirmed():
        return confirm_page(
            title=f"Delete the integration “{item.name}”?",
            lines=["Its webhook stops working; components its alerts hold down recover. This cannot be undone."],
            action=url_for("admin.delete_integration", integration_id=item.id), button="Delete integration",
            back=url_for("admin.integration", integration_id=item.id))
    run_service(integrations_svc.delete_integration, item, success=f"Integration {item.name} deleted.")
    return redirect(url_for("admin.integrations"))
