"""Property tests for litestar_queues.cron against a small brute-force oracle.

Expressions are built from random field specs; the test derives the expected value sets from the
same specs independently of the parser, and checks ``next_after`` minute by minute in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from litestar_queues.cron import CronSyntaxError, parse_cron

UTC = timezone.utc
MINUTE = timedelta(minutes=1)
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
WEEKDAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
DAYS_IN_MONTH = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}

# Known 2026 offset changes, so that moments can be drawn close to gaps and overlaps.
TRANSITIONS = {
    "UTC": [],
    "Asia/Kolkata": [],
    "Europe/Berlin": ["2026-03-29T01:00:00+00:00", "2026-10-25T01:00:00+00:00"],
    "America/New_York": ["2026-03-08T07:00:00+00:00", "2026-11-01T06:00:00+00:00"],
    "Australia/Sydney": ["2026-04-04T16:00:00+00:00", "2026-10-03T16:00:00+00:00"],
    "Australia/Lord_Howe": ["2026-04-04T15:00:00+00:00", "2026-10-03T15:30:00+00:00"],
    "Pacific/Chatham": ["2026-04-04T14:00:00+00:00", "2026-09-26T14:00:00+00:00"],
}
ZONES = sorted(TRANSITIONS)
FAST = settings(max_examples=200, deadline=None, database=None)


@dataclass(frozen=True)
class FieldSpec:
    low: int
    high: int
    names: list[str] | None = None
    name_offset: int = 0


MINUTE_SPEC = FieldSpec(0, 59)
HOUR_SPEC = FieldSpec(0, 23)
DOM_SPEC = FieldSpec(1, 31)
MONTH_SPEC = FieldSpec(1, 12, MONTHS, 1)
DOW_SPEC = FieldSpec(0, 7, WEEKDAYS)


@dataclass(frozen=True)
class Field:
    text: str
    values: frozenset[int]


@dataclass(frozen=True)
class Schedule:
    minute: Field
    hour: Field
    dom: Field
    month: Field
    dow: Field

    @property
    def text(self) -> str:
        return " ".join(f.text for f in (self.minute, self.hour, self.dom, self.month, self.dow))

    @property
    def day_or(self) -> bool:
        return not any(f.text.startswith(("*", "?")) for f in (self.dom, self.dow))

    def feasible(self) -> bool:
        if self.day_or:
            return True
        return any(day <= DAYS_IN_MONTH[month] for month in self.month.values for day in self.dom.values)

    def wall_matches(self, wall: datetime) -> bool:
        in_dom = wall.day in self.dom.values
        in_dow = wall.isoweekday() % 7 in self.dow.values
        day = (in_dom or in_dow) if self.day_or else (in_dom and in_dow)
        return (
            day
            and wall.minute in self.minute.values
            and wall.hour in self.hour.values
            and (wall.month in self.month.values)
        )

    def fires_at(self, instant: datetime, zone: ZoneInfo) -> bool:
        """Oracle: a wall minute fires at its first occurrence, a skipped one at the end of its gap."""
        local = instant.astimezone(zone)
        if local.fold == 0 and local.second == local.microsecond == 0 and self.wall_matches(local.replace(tzinfo=None)):
            return True
        before = (instant - timedelta(microseconds=1)).astimezone(zone)
        jump = local.utcoffset() - before.utcoffset()  # type: ignore[operator]
        wall = local.replace(tzinfo=None)
        skipped = wall - jump
        while skipped < wall:
            if self.wall_matches(skipped):
                return True
            skipped += MINUTE
        return False


def render(value: int, spec: FieldSpec, use_name: bool) -> str:
    if use_name and spec.names is not None and value - spec.name_offset < len(spec.names):
        return spec.names[value - spec.name_offset]
    return str(value)


@st.composite
def field_items(draw: st.DrawFn, spec: FieldSpec) -> tuple[str, set[int]]:
    # `*` and `a/n` stop at 6 for day-of-week: 7 is only another spelling of Sunday.
    open_high = 6 if spec is DOW_SPEC else spec.high
    kind = draw(st.sampled_from(["star", "star-step", "value", "range", "range-step", "start-step"]))
    step = draw(st.integers(1, spec.high - spec.low + 3))
    a, b = sorted(draw(st.lists(st.integers(spec.low, spec.high), min_size=2, max_size=2)))
    name_a, name_b = draw(st.booleans()), draw(st.booleans())
    if kind == "star":
        return "*", set(range(spec.low, open_high + 1))
    if kind == "star-step":
        return f"*/{step}", set(range(spec.low, open_high + 1, step))
    if kind == "value":
        return render(a, spec, name_a), {a}
    if kind == "range":
        return f"{render(a, spec, name_a)}-{render(b, spec, name_b)}", set(range(a, b + 1))
    if kind == "range-step":
        return f"{render(a, spec, name_a)}-{render(b, spec, name_b)}/{step}", set(range(a, b + 1, step))
    return f"{render(a, spec, name_a)}/{step}", set(range(a, max(a, open_high) + 1, step))


@st.composite
def fields(draw: st.DrawFn, spec: FieldSpec, question: bool = False) -> Field:
    if question and draw(st.integers(0, 9)) == 0:
        return Field("?", frozenset(range(spec.low, 7 if spec is DOW_SPEC else spec.high + 1)))
    items = draw(st.lists(field_items(spec), min_size=1, max_size=3))
    values = set().union(*(item_values for _, item_values in items))
    if spec is DOW_SPEC:
        values = {value % 7 for value in values}
    return Field(",".join(text for text, _ in items), frozenset(values))


@st.composite
def schedules(draw: st.DrawFn, frequent: bool = False) -> Schedule:
    if frequent:
        # Fires at least every few hours, so the oracle can scan the whole interval minute by minute.
        step = draw(st.integers(1, 4))
        first = draw(st.integers(0, step - 1))
        hour = Field(f"{first}/{step}", frozenset(range(first, 24, step)))
        every_day = Field("*", frozenset(range(1, 32)))
        every_month = Field("*", frozenset(range(1, 13)))
        every_weekday = Field("*", frozenset(range(7)))
        return Schedule(draw(fields(MINUTE_SPEC)), hour, every_day, every_month, every_weekday)
    return Schedule(
        draw(fields(MINUTE_SPEC)),
        draw(fields(HOUR_SPEC)),
        draw(fields(DOM_SPEC, question=True)),
        draw(fields(MONTH_SPEC)),
        draw(fields(DOW_SPEC, question=True)),
    )


@st.composite
def moments(draw: st.DrawFn, zone: str) -> datetime:
    near_transition = draw(st.integers(0, 2)) > 0
    if TRANSITIONS[zone] and near_transition:
        transition = datetime.fromisoformat(draw(st.sampled_from(TRANSITIONS[zone])))
        # Mostly just before the transition, so that the next fire time has to cross it.
        minutes = draw(st.one_of(st.integers(-150, 30), st.integers(-6 * 60, 6 * 60)))
        moment = transition + timedelta(minutes=minutes)
    else:
        moment = draw(st.datetimes(datetime(1990, 1, 1), datetime(2060, 1, 1), timezones=st.just(UTC)))
    if draw(st.booleans()):
        moment = moment.replace(second=draw(st.integers(0, 59)), microsecond=draw(st.integers(0, 999_999)))
    # Show the moment in its own zone sometimes: the offset of the input must not matter.
    return moment.astimezone(ZoneInfo(zone)) if draw(st.booleans()) else moment


zone_and_moment = st.sampled_from(ZONES).flatmap(lambda zone: st.tuples(st.just(zone), moments(zone)))


def test_transition_table_is_right() -> None:
    for zone, instants in TRANSITIONS.items():
        for text in instants:
            instant = datetime.fromisoformat(text)
            tz = ZoneInfo(zone)
            assert instant.astimezone(tz).utcoffset() != (instant - MINUTE).astimezone(tz).utcoffset()


@FAST
@given(schedule=schedules())
def test_parses_unless_it_can_never_fire(schedule: Schedule) -> None:
    if schedule.feasible():
        assert parse_cron(schedule.text).expression == schedule.text
    else:
        with pytest.raises(CronSyntaxError, match="never fires") as excinfo:
            parse_cron(schedule.text)
        assert excinfo.value.field == "day-of-month"


@FAST
@given(schedule=schedules(), zone_moment=zone_and_moment)
def test_next_after_is_a_later_fire_time(schedule: Schedule, zone_moment: tuple[str, datetime]) -> None:
    assume(schedule.feasible())
    zone, moment = zone_moment
    parsed = parse_cron(schedule.text)
    current = moment
    for _ in range(20):
        result = parsed.next_after(current, zone)
        assert result.tzinfo is UTC
        assert result > current
        assert parsed.matches(result, zone)
        assert schedule.fires_at(result, ZoneInfo(zone))
        current = result


@FAST
@given(schedule=schedules(frequent=True), zone_moment=zone_and_moment)
def test_no_fire_time_is_skipped(schedule: Schedule, zone_moment: tuple[str, datetime]) -> None:
    zone, moment = zone_moment
    tz = ZoneInfo(zone)
    result = parse_cron(schedule.text).next_after(moment, zone)
    # Offsets and transitions of these zones are whole minutes, so every fire time is a UTC minute.
    candidate = moment.astimezone(UTC).replace(second=0, microsecond=0) + MINUTE
    while not schedule.fires_at(candidate, tz):
        candidate += MINUTE
        assert candidate <= result, "oracle found no fire time up to the result"
    assert candidate == result
