"""Which database changes alter public output, seen where every change passes: the SQLAlchemy session.

Service functions do not have to remember to publish. After each flush the session's new, changed
and deleted objects are classified (``TRACKED``), and the targets they affect are written as
``PublishRequest`` rows in the same transaction (an outbox, like events): they commit or roll back
with the change. After the commit a publish job is scheduled (publisher.schedule_publish); if that
fails (Redis down), the sweeper publishes the rows later. Bulk ``session.execute(update(...))``
statements on tracked tables are classified too (by the ids in their WHERE clause when it names
them). Raw SQL on a bare connection is not seen: go through the session.

Adding a model whose rows show on public pages is one call: ``track(MyModel, topics=(Topic.X,))``,
or ``track(MyModel, classify=fn)`` where ``fn(obj, how)`` returns targets (topics, "incident:<id>").
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import event, inspect
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList

from ..models import Component, ComponentGroup, Incident, IncidentUpdate, PublishRequest, PushSettings, VapidKey
from .registry import Topic


class How(StrEnum):
    NEW = "new"
    CHANGED = "changed"
    DELETED = "deleted"


Classifier = Callable[[Any, How], Iterable[str]]
TRACKED: dict[type, Classifier] = {}
BULK: dict[str, Callable[[ORMExecuteState], Iterable[str]]] = {}

_PENDING = "publish_targets"
_REQUESTED = "publish_requested"
SUPPRESS_SCHEDULE = "publish_no_schedule"  # the publisher's own commits (its loop continues itself)


def incident_target(incident_id: int) -> str:
    return f"incident:{incident_id}"


def track(model: type, classify: Classifier | None = None, *, topics: Iterable[Topic] = ()) -> None:
    """Declare that rows of ``model`` show on public pages (see the module docstring)."""
    fixed = tuple(topics)
    TRACKED[model] = classify or (lambda obj, how: fixed)
    table = getattr(model, "__tablename__", None)
    if table and table not in BULK:
        BULK[table] = lambda state: fixed or (Topic.ALL,)


def _changed(obj: Any) -> set[str]:
    return {attr.key for attr in inspect(obj).attrs if attr.history.has_changes()}


def _component(obj: Component, how: How) -> Iterable[str]:
    if how is How.CHANGED and _changed(obj) <= {"status", "updated_at"}:
        return (Topic.COMPONENT_STATUS,)
    return (Topic.COMPONENT_STATUS, Topic.COMPONENTS)


def _incident(obj: Incident, how: How) -> Iterable[str]:
    targets = [Topic.INCIDENTS, incident_target(obj.id)]
    if how is not How.CHANGED or _changed(obj) & {"created_at", "scheduled_for", "kind"} \
            or _left_or_entered_scheduled(obj):
        targets.append(Topic.INCIDENT_LIST)  # paged lists (history) shift
    return targets


def _left_or_entered_scheduled(obj: Incident) -> bool:
    """History leaves out scheduled maintenance: its start (or a step back) adds or removes a row."""
    history = inspect(obj).attrs.status.history
    return history.has_changes() and "scheduled" in (*history.added, *history.deleted)


def _update(obj: IncidentUpdate, how: How) -> Iterable[str]:
    incident_id = obj.incident_id if obj.incident_id is not None else getattr(obj.incident, "id", None)
    return (Topic.INCIDENTS, incident_target(incident_id)) if incident_id else (Topic.INCIDENTS, Topic.INCIDENT_LIST)


def _push_settings(obj: PushSettings, how: How) -> Iterable[str]:
    if how is How.CHANGED and "enabled" not in _changed(obj):
        return ()  # icon, badge and debounce never show on a page
    return (Topic.SUBSCRIBE,)


track(Component, _component)
track(ComponentGroup, topics=(Topic.COMPONENT_STATUS, Topic.COMPONENTS))
track(Incident, _incident)
track(IncidentUpdate, _update)
track(PushSettings, _push_settings)
track(VapidKey, topics=(Topic.SUBSCRIBE,))


# --- bulk statements ---------------------------------------------------------------------------

def _ids_named(state: ORMExecuteState, column_name: str) -> set[int] | None:
    """The ids a bulk UPDATE/DELETE is limited to by ``<column> = x`` / ``IN (...)`` in an AND-only
    WHERE clause, or None when it is not limited that way (then everything is re-rendered)."""
    where = getattr(state.statement, "whereclause", None)
    if where is None:
        return None
    terms = list(where.clauses) if isinstance(where, BooleanClauseList) and where.operator is operators.and_ \
        else [where]
    for term in terms:
        if not isinstance(term, BinaryExpression) or getattr(term.left, "key", None) != column_name:
            continue
        right = term.right
        if not isinstance(right, BindParameter):
            continue
        if term.operator is operators.eq and isinstance(right.value, int):
            return {right.value}
        if term.operator is operators.in_op and isinstance(right.value, (list, tuple)) \
                and all(isinstance(v, int) for v in right.value):
            return set(right.value)
    return None


def _bulk_values(state: ORMExecuteState) -> set[str]:
    values = getattr(state.statement, "_values", None) or {}
    return {getattr(key, "key", str(key)) for key in values}


def _bulk_incidents(state: ORMExecuteState) -> Iterable[str]:
    ids = _ids_named(state, "id")
    if ids is None or state.is_insert:
        return (Topic.ALL,)
    targets: list[str] = [Topic.INCIDENTS, *(incident_target(i) for i in ids)]
    if state.is_delete or _bulk_values(state) & {"created_at", "scheduled_for", "kind", "status"}:
        targets.append(Topic.INCIDENT_LIST)
    return targets


def _bulk_updates(state: ORMExecuteState) -> Iterable[str]:
    ids = _ids_named(state, "incident_id")
    return (Topic.ALL,) if ids is None else (Topic.INCIDENTS, *(incident_target(i) for i in ids))


def _bulk_components(state: ORMExecuteState) -> Iterable[str]:
    if state.is_update and _bulk_values(state) <= {"status", "updated_at"}:
        return (Topic.COMPONENT_STATUS,)
    return (Topic.COMPONENT_STATUS, Topic.COMPONENTS)


BULK.update({"incidents": _bulk_incidents, "incident_updates": _bulk_updates, "components": _bulk_components})


# --- session events ------------------------------------------------------------------------------

def _publishing_enabled() -> bool:
    return has_app_context() and "statuspage_snapshot" in current_app.extensions


def _classify(obj: Any, how: How) -> Iterable[str]:
    for cls in type(obj).__mro__:
        classify = TRACKED.get(cls)
        if classify is not None:
            return classify(obj, how)
    return ()


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, flush_context) -> None:
    if not _publishing_enabled():
        return
    found: set[str] = set()
    for obj in session.new:
        if isinstance(obj, PublishRequest):
            session.info[_REQUESTED] = True
        else:
            found.update(_classify(obj, How.NEW))
    for obj in session.dirty:
        if session.is_modified(obj, include_collections=True):
            found.update(_classify(obj, How.CHANGED))
    for obj in session.deleted:
        found.update(_classify(obj, How.DELETED))
    if found:
        session.info.setdefault(_PENDING, set()).update(found)


@event.listens_for(Session, "after_flush_postexec")
def _add_requests(session: Session, flush_context=None) -> None:
    """Rows added here are flushed by the commit's own flush loop, inside the same transaction."""
    pending = session.info.pop(_PENDING, None)
    if pending:
        session.add_all([PublishRequest(target=str(target)) for target in sorted(pending)])


@event.listens_for(Session, "do_orm_execute")
def _bulk_statement(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete or state.is_insert) or not _publishing_enabled():
        return
    table = getattr(getattr(state.statement, "table", None), "name", None)
    classify = BULK.get(table) if table else None
    if classify is None:
        return
    state.session.info.setdefault(_PENDING, set()).update(classify(state))
    _add_requests(state.session)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    requested = session.info.pop(_REQUESTED, False)
    if requested and not session.info.get(SUPPRESS_SCHEDULE) and _publishing_enabled():
        from .publisher import schedule_publish

        schedule_publish()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_REQUESTED, None)
