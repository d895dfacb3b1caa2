"""Uptime maths from the component status history: days in SITE_TIMEZONE (DST-correct), a
change exactly at midnight, outages spanning days, no data before a component's history starts,
Statuspage's weighting (major 100 %, partial 30 %), group roll-up, the day's incidents, one
query over the history however many components, and the JSON for scripts."""
from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event

from statuspage.extensions import db
from statuspage.models import Component, ComponentGroup, ComponentStatusChange, Incident, incident_components
from statuspage.uptime import NO_DATA, build_uptime, day_bounds, day_summary, next_day_boundary

BERLIN = ZoneInfo("Europe/Berlin")
HOUR = 3600.0
DAY = 86400.0


def utc(*args, tz=BERLIN) -> datetime:
    """A wall-clock time in `tz` as the naive UTC the database stores."""
    return datetime(*args, tzinfo=tz).astimezone(UTC).replace(tzinfo=None)


def component(name: str, created: datetime, changes: list[tuple[datetime, str]], group: int | None = None,
              showcase: bool = True) -> int:
    c = Component(name=name, status=changes[-1][1] if changes else "operational", created_at=created,
                  updated_at=created, group_id=group, showcase=showcase)
    db.session.add(c)
    db.session.flush()
    db.session.add(ComponentStatusChange(component_id=c.id, status="operational", changed_at=created))
    for at, status in changes:
        db.session.add(ComponentStatusChange(component_id=c.id, status=status, changed_at=at))
    db.session.commit()
    return c.id


def day_of(uptime, cid: int, y: int, m: int, d: int):
    return next(day for day in uptime.rows[cid].days if (day.date.year, day.date.month, day.date.day) == (y, m, d))


@pytest.fixture
def berlin(app):
    app.config["SITE_TIMEZONE"] = "Europe/Berlin"
    with app.app_context():
        yield app


def test_days_are_local_calendar_days_of_23_and_25_hours_across_dst(berlin):
    bounds = {d.isoformat(): (end - start).total_seconds() for d, start, end in day_bounds(utc(2024, 11, 1, 12, 0))}
    assert bounds["2024-10-27"] == 25 * HOUR  # clocks went back
    assert bounds["2024-10-26"] == 24 * HOUR
    assert day_bounds(utc(2024, 11, 1, 12, 0))[-1][2] == utc(2024, 11, 1, 12, 0)  # today ends now
    spring = {d.isoformat(): (e - s).total_seconds() for d, s, e in day_bounds(utc(2024, 4, 2, 12, 0))}
    assert spring["2024-03-31"] == 23 * HOUR
    assert next_day_boundary(utc(2024, 10, 26, 23, 30)) == utc(2024, 10, 27, 0, 0)
    assert next_day_boundary(utc(2024, 3, 30, 12, 0)) == datetime(2024, 3, 30, 23, 0)  # 00:00 CET = 23:00 UTC


def test_an_outage_spanning_midnight_and_days_counts_on_each_local_day(berlin):
    created = utc(2024, 9, 1, 0, 0)
    cid = component("API", created, [(utc(2024, 10, 1, 23, 30), "major_outage"),
                                     (utc(2024, 10, 4, 0, 30), "operational")])
    uptime = build_uptime(now=utc(2024, 10, 10, 12, 0))
    first, middle, last, after = (day_of(uptime, cid, 2024, 10, d) for d in (1, 2, 4, 5))
    assert first.seconds["major_outage"] == 30 * 60 and first.status == "major_outage"
    assert middle.seconds == {"major_outage": DAY} and middle.status == "major_outage"
    assert last.seconds["major_outage"] == 30 * 60 and last.status == "major_outage"
    assert after.status == "operational" and after.downtime == 0
    assert "major outage 30 min" in day_summary(first)
    assert day_summary(middle).startswith("Oct 2, 2024: major outage 24 h")


def test_a_change_exactly_at_local_midnight_belongs_to_the_new_day_only(berlin):
    cid = component("DB", utc(2024, 9, 1, 0, 0), [(utc(2024, 10, 2, 0, 0), "partial_outage"),
                                                  (utc(2024, 10, 3, 0, 0), "operational")])
    uptime = build_uptime(now=utc(2024, 10, 10, 12, 0))
    assert day_of(uptime, cid, 2024, 10, 1).status == "operational"
    assert day_of(uptime, cid, 2024, 10, 2).seconds == {"partial_outage": DAY}
    assert day_of(uptime, cid, 2024, 10, 3).status == "operational"


def test_the_dst_day_is_counted_with_its_real_length(berlin):
    cid = component("Queue", utc(2024, 9, 1, 0, 0), [(utc(2024, 10, 27, 0, 0), "major_outage"),
                                                     (utc(2024, 10, 28, 0, 0), "operational")])
    uptime = build_uptime(now=utc(2024, 11, 1, 0, 0))
    assert day_of(uptime, cid, 2024, 10, 27).seconds == {"major_outage": 25 * HOUR}


def test_no_data_before_a_component_was_created_rather_than_100_percent(berlin):
    now = utc(2024, 10, 10, 12, 0)
    cid = component("New", utc(2024, 10, 8, 12, 0), [(utc(2024, 10, 9, 12, 0), "major_outage"),
                                                      (utc(2024, 10, 9, 18, 0), "operational")])
    row = build_uptime(now=now).rows[cid]
    statuses = [d.status for d in row.days]
    assert statuses[:-3] == [NO_DATA] * 87 and statuses[-3:] == ["operational", "major_outage", "operational"]
    assert day_summary(row.days[0]).endswith("no data")
    assert row.observed == 2 * DAY
    assert row.uptime_percent == 87.5  # 6 h down in 48 h observed, not 6 h in 90 days
    assert row.since.isoformat() == "2024-10-08"


def test_statuspage_weighting_partial_counts_30_percent_degraded_and_maintenance_nothing(berlin):
    now = utc(2024, 10, 11, 0, 0)
    cid = component("Web", utc(2024, 10, 1, 0, 0), [
        (utc(2024, 10, 2, 0, 0), "partial_outage"), (utc(2024, 10, 2, 10, 0), "operational"),
        (utc(2024, 10, 3, 0, 0), "major_outage"), (utc(2024, 10, 3, 1, 0), "degraded_performance"),
        (utc(2024, 10, 3, 5, 0), "under_maintenance"), (utc(2024, 10, 3, 8, 0), "operational"),
        (utc(2024, 10, 4, 0, 0), "under_maintenance"), (utc(2024, 10, 4, 2, 0), "operational"),
    ])
    row = build_uptime(now=now).rows[cid]
    assert row.observed == 10 * DAY
    assert row.downtime == pytest.approx(1 * HOUR + 0.3 * 10 * HOUR)
    assert row.uptime_percent == 98.33  # 1 - (3600 + 0.3 * 36000) / 864000 = 0.98333...
    assert day_of(build_uptime(now=now), cid, 2024, 10, 3).status == "major_outage"
    assert day_of(build_uptime(now=now), cid, 2024, 10, 4).status == "under_maintenance"


def test_any_downtime_never_rounds_up_to_100_percent(berlin):
    cid = component("Tiny", utc(2024, 7, 1, 0, 0), [(utc(2024, 10, 2, 0, 0), "major_outage"),
                                                    (utc(2024, 10, 2, 0, 1), "operational")])
    assert build_uptime(now=utc(2024, 10, 10, 0, 0)).rows[cid].uptime_percent == 99.99


def test_groups_roll_up_their_components(berlin):
    group = ComponentGroup(name="Core")
    db.session.add(group)
    db.session.commit()
    created = utc(2024, 10, 1, 0, 0)
    a = component("A", created, [(utc(2024, 10, 2, 0, 0), "major_outage"), (utc(2024, 10, 2, 12, 0), "operational")],
                  group=group.id)
    b = component("B", created, [(utc(2024, 10, 3, 0, 0), "degraded_performance")], group=group.id)
    component("Hidden", created, [(utc(2024, 10, 2, 0, 0), "major_outage")], group=group.id, showcase=False)
    uptime = build_uptime(now=utc(2024, 10, 5, 0, 0))
    rolled = uptime.groups[group.id]
    assert [m.id for m in rolled.members] == [a, b]  # components without showcase show no uptime
    days = {d.date.day: d.status for d in rolled.days if d.status != NO_DATA}
    assert days == {1: "operational", 2: "major_outage", 3: "degraded_performance", 4: "degraded_performance"}
    assert rolled.observed == 8 * DAY and rolled.downtime == 12 * HOUR
    assert rolled.uptime_percent == 93.75


def test_the_days_incidents_are_those_of_the_component_while_they_were_open(berlin):
    created = utc(2024, 9, 1, 0, 0)
    api = component("API", created, [])
    web = component("Web", created, [])
    opened, closed = utc(2024, 10, 2, 22, 0), utc(2024, 10, 3, 2, 0)
    incident = Incident(kind="incident", name="Errors", status="resolved", impact="major", created_at=opened,
                        updated_at=closed, resolved_at=closed)
    maintenance = Incident(kind="maintenance", name="Upgrade", status="completed", impact="maintenance",
                           created_at=created, updated_at=closed, scheduled_for=utc(2024, 10, 5, 1, 0),
                           scheduled_until=utc(2024, 10, 5, 2, 0), started_at=utc(2024, 10, 5, 1, 0),
                           resolved_at=utc(2024, 10, 5, 2, 0))
    db.session.add_all([incident, maintenance])
    db.session.flush()
    db.session.execute(incident_components.insert(), [{"incident_id": incident.id, "component_id": api},
                                                      {"incident_id": maintenance.id, "component_id": api}])
    db.session.commit()
    uptime = build_uptime(now=utc(2024, 10, 10, 0, 0))
    names = {d.date.day: [i.name for i in d.incidents] for d in uptime.rows[api].days if d.incidents}
    assert names == {2: ["Errors"], 3: ["Errors"], 5: ["Upgrade"]}
    assert not any(d.incidents for d in uptime.rows[web].days)
    assert day_summary(day_of(uptime, api, 2024, 10, 2)).endswith("no downtime; 1 incident")


def test_one_query_over_the_history_however_many_components(berlin):
    created = utc(2024, 9, 1, 0, 0)
    for n in range(3):
        component(f"C{n}", created, [(utc(2024, 10, 2, n, 0), "major_outage"), (utc(2024, 10, 2, 5, 0), "operational")])

    def statements() -> list[str]:
        seen: list[str] = []

        def record(conn, cursor, statement, *args):
            seen.append(statement)

        event.listen(db.engine, "before_cursor_execute", record)
        try:
            db.session.expire_all()
            build_uptime(now=utc(2024, 10, 10, 0, 0))
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        return seen

    few = statements()
    for n in range(3, 40):
        component(f"C{n}", created, [(utc(2024, 10, 2, 3, 0), "partial_outage")])
    many = statements()
    assert len(many) == len(few)
    assert sum("component_status_changes" in s for s in many) == 1


def test_history_before_the_window_sets_the_first_days_status(app):
    with app.app_context():
        now = datetime(2024, 10, 10, 12, 0)
        cid = component("Old", datetime(2023, 1, 1), [(datetime(2024, 5, 1), "degraded_performance")])
        row = build_uptime(now=now).rows[cid]
        assert all(d.status == "degraded_performance" for d in row.days)
        assert row.uptime_percent == 100.0


def test_uptime_json_for_scripts(app, client, api):
    cid = api.post("/api/v1/components", {"name": "API"}).json["id"]
    api.post("/api/v1/incidents", {"name": "Down", "components": {str(cid): "major_outage"}})
    data = client.get("/api/v2/uptime.json").json
    assert data["window"]["days"] == 90 and data["window"]["time_zone"] == "Etc/UTC"
    assert data["downtime_weights"] == {"major_outage": 1.0, "partial_outage": 0.3}
    [row] = data["components"]
    assert row["id"] == str(cid) and row["name"] == "API" and row["group"] is False
    assert len(row["days"]) == 90 and row["days"][0]["status"] == NO_DATA
    today = row["days"][-1]
    assert today["status"] == "major_outage"
    assert today["incidents"][0]["url"] == "https://status.example.com/incidents/1"
    assert row["uptime_percent"] is None or row["uptime_percent"] < 100
    assert client.get("/api/v2/components.json").json.keys() == {"page", "components"}  # untouched
    assert client.get("/api/v2/uptime.json?days=7").json["window"]["days"] == 90


def test_the_public_page_shows_bars_with_words_and_a_legend(client, api):
    group = api.post("/api/v1/component-groups", {"name": "Core"}).json["id"]
    cid = api.post("/api/v1/components", {"name": "API", "group_id": group}).json["id"]
    api.post("/api/v1/components", {"name": "Internal", "showcase": False})
    api.post("/api/v1/incidents", {"name": "Down <b>hard</b>", "components": {str(cid): "partial_outage"}})
    page = client.get("/").get_data(as_text=True)
    assert page.count('class="uptime-bars"') == 2  # the group and its component; not Internal
    assert 'aria-label="API: the last 90 days"' in page and 'aria-label="Core: the last 90 days"' in page
    assert "partial outage" in page and "no data" in page
    assert 'class="uptime-legend"' in page and "Degraded performance" in page
    assert "Down &lt;b&gt;hard&lt;/b&gt;" in page and "<b>hard</b>" not in page
    assert re.search(r"/static/js/uptime\.[0-9a-f]{10}\.js", page)  # a content-hashed, immutable URL
