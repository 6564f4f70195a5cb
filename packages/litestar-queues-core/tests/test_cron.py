"""Table tests for litestar_queues.cron.

Every expected instant below was worked out by hand from the calendar and the zone's published
DST rules, then cross-checked against plain zoneinfo conversions (never against the code under test).
"""

from __future__ import annotations

import pickle
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from litestar_queues import cron
from litestar_queues.cron import CronExpression, CronSyntaxError, parse_cron

UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# (expression, timezone, moment, expected next fire time in UTC)
NEXT_AFTER_CASES = [
    # --- UTC basics, strictly-after and sub-minute moments
    pytest.param("* * * * *", "UTC", "2026-01-01T00:00:00+00:00", "2026-01-01T00:01:00+00:00", id="every-minute"),
    pytest.param("* * * * *", "UTC", "2026-01-01T00:00:30+00:00", "2026-01-01T00:01:00+00:00", id="seconds-in-moment"),
    pytest.param("0 * * * *", "UTC", "2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00", id="on-slot-is-skipped"),
    pytest.param(
        "0 0 * * *", "UTC", "2026-01-01T00:00:00.000001+00:00", "2026-01-02T00:00:00+00:00", id="microsecond-past"
    ),
    pytest.param(
        "15 10 * * *", "UTC", "2026-01-01T10:14:59.999999+00:00", "2026-01-01T10:15:00+00:00", id="microsecond-before"
    ),
    pytest.param("15 10 * * *", "UTC", "2026-01-01T10:15:00+00:00", "2026-01-02T10:15:00+00:00", id="daily-next-day"),
    # --- steps, ranges and lists
    pytest.param("*/15 * * * *", "UTC", "2026-01-01T10:46:00+00:00", "2026-01-01T11:00:00+00:00", id="star-step"),
    pytest.param("5/20 * * * *", "UTC", "2026-01-01T10:26:00+00:00", "2026-01-01T10:45:00+00:00", id="start-step"),
    pytest.param(
        "10-30/10 * * * *", "UTC", "2026-01-01T10:31:00+00:00", "2026-01-01T11:10:00+00:00", id="range-step-wraps"
    ),
    pytest.param(
        "0 9-17/4 * * *", "UTC", "2026-01-01T13:00:00+00:00", "2026-01-01T17:00:00+00:00", id="hour-range-step"
    ),
    pytest.param(
        "0 9-17/4 * * *", "UTC", "2026-01-01T17:00:00+00:00", "2026-01-02T09:00:00+00:00", id="hour-range-step-next-day"
    ),
    pytest.param("1,2,58 * * * *", "UTC", "2026-01-01T10:02:00+00:00", "2026-01-01T10:58:00+00:00", id="list"),
    pytest.param("0 0 1 */3 *", "UTC", "2026-02-01T00:00:00+00:00", "2026-04-01T00:00:00+00:00", id="month-step"),
    pytest.param(
        "*/90 * * * *", "UTC", "2026-01-01T10:00:00+00:00", "2026-01-01T11:00:00+00:00", id="step-beyond-range"
    ),
    # --- month boundaries, leap years, year rollover
    pytest.param("0 0 1 * *", "UTC", "2026-01-31T12:00:00+00:00", "2026-02-01T00:00:00+00:00", id="first-of-month"),
    pytest.param("0 0 31 * *", "UTC", "2026-04-01T00:00:00+00:00", "2026-05-31T00:00:00+00:00", id="skips-april-31"),
    pytest.param("0 0 29 * *", "UTC", "2026-02-01T00:00:00+00:00", "2026-03-29T00:00:00+00:00", id="no-feb-29-in-2026"),
    pytest.param("0 0 29 2 *", "UTC", "2026-01-01T00:00:00+00:00", "2028-02-29T00:00:00+00:00", id="leap-day"),
    pytest.param("0 0 29 2 *", "UTC", "2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00", id="leap-day-next"),
    pytest.param("0 0 * 2 *", "UTC", "2028-02-28T12:00:00+00:00", "2028-02-29T00:00:00+00:00", id="feb-in-leap-year"),
    pytest.param("0 0 * 2 *", "UTC", "2028-02-29T00:00:00+00:00", "2029-02-01T00:00:00+00:00", id="feb-to-next-year"),
    pytest.param(
        "59 23 31 12 *", "UTC", "2026-12-31T23:59:00+00:00", "2027-12-31T23:59:00+00:00", id="yearly-rollover"
    ),
    pytest.param("0 0 1 1 *", "UTC", "2026-12-31T23:59:59+00:00", "2027-01-01T00:00:00+00:00", id="new-year"),
    # 29 February on a Sunday (day-of-week `*/7` starts with `*`, so both day fields must match).
    pytest.param("0 0 29 2 */7", "UTC", "2026-01-01T00:00:00+00:00", "2032-02-29T00:00:00+00:00", id="leap-sunday"),
    pytest.param("0 0 29 2 */7", "UTC", "2032-02-29T00:00:00+00:00", "2060-02-29T00:00:00+00:00", id="leap-sunday-28y"),
    # --- weekdays, names, Sunday as 0 and 7 (2026-01-01 is a Thursday)
    pytest.param("0 0 * * 0", "UTC", "2026-01-01T00:00:00+00:00", "2026-01-04T00:00:00+00:00", id="sunday-0"),
    pytest.param("0 0 * * 7", "UTC", "2026-01-01T00:00:00+00:00", "2026-01-04T00:00:00+00:00", id="sunday-7"),
    pytest.param("0 0 * * SUN", "UTC", "2026-01-01T00:00:00+00:00", "2026-01-04T00:00:00+00:00", id="sunday-name"),
    pytest.param("0 0 * * mon-fri", "UTC", "2026-01-02T12:00:00+00:00", "2026-01-05T00:00:00+00:00", id="weekdays"),
    pytest.param("0 0 * * SAT,sun", "UTC", "2026-01-01T00:00:00+00:00", "2026-01-03T00:00:00+00:00", id="weekend"),
    pytest.param("30 0 * * 5-7", "UTC", "2026-01-04T00:30:00+00:00", "2026-01-09T00:30:00+00:00", id="fri-to-7"),
    pytest.param("0 12 * * 1/2", "UTC", "2026-01-02T12:00:00+00:00", "2026-01-05T12:00:00+00:00", id="mon-wed-fri"),
    pytest.param("0 0 1 jan,JUL *", "UTC", "2026-01-01T00:00:00+00:00", "2026-07-01T00:00:00+00:00", id="month-names"),
    pytest.param("0 0 1 APR-jun *", "UTC", "2026-06-02T00:00:00+00:00", "2027-04-01T00:00:00+00:00", id="month-range"),
    # --- day-of-month / day-of-week rule
    pytest.param("0 0 13 * FRI", "UTC", "2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00", id="or-friday"),
    pytest.param("0 0 13 * FRI", "UTC", "2026-01-09T00:00:00+00:00", "2026-01-13T00:00:00+00:00", id="or-thirteenth"),
    pytest.param("0 0 13 * ?", "UTC", "2026-01-01T00:00:00+00:00", "2026-01-13T00:00:00+00:00", id="question-dow"),
    pytest.param("0 0 ? * FRI", "UTC", "2026-01-09T00:00:00+00:00", "2026-01-16T00:00:00+00:00", id="question-dom"),
    pytest.param("0 0 */2 * MON", "UTC", "2026-01-06T00:00:00+00:00", "2026-01-19T00:00:00+00:00", id="star-step-and"),
    pytest.param("0 0 1-31 * MON", "UTC", "2026-01-06T00:00:00+00:00", "2026-01-07T00:00:00+00:00", id="range-is-or"),
    pytest.param("0 0 31 4 MON", "UTC", "2026-01-01T00:00:00+00:00", "2026-04-06T00:00:00+00:00", id="or-april-monday"),
    # --- other zones without a transition nearby; moments given in another offset
    pytest.param("0 * * * *", "UTC", "2026-01-01T12:00:00+05:00", "2026-01-01T08:00:00+00:00", id="moment-offset"),
    pytest.param("0 9 * * *", "Asia/Kolkata", "2026-01-01T00:00:00+00:00", "2026-01-01T03:30:00+00:00", id="kolkata"),
    pytest.param(
        "0 9 * * *", "Asia/Kolkata", "2026-01-01T03:30:00+00:00", "2026-01-02T03:30:00+00:00", id="kolkata-next"
    ),
    pytest.param(
        "*/45 * * * *", "Asia/Kolkata", "2026-01-01T00:00:00+00:00", "2026-01-01T00:15:00+00:00", id="kolkata-minutes"
    ),
    pytest.param(
        "0 9 * * *", "Pacific/Chatham", "2026-06-01T00:00:00+00:00", "2026-06-01T20:15:00+00:00", id="chatham-winter"
    ),
    pytest.param(
        "0 0 * * *", "Pacific/Chatham", "2026-01-01T00:00:00+00:00", "2026-01-01T10:15:00+00:00", id="chatham-summer"
    ),
    pytest.param(
        "0 8 * * MON-FRI", "Europe/Berlin", "2026-07-03T06:00:00+00:00", "2026-07-06T06:00:00+00:00", id="berlin-cest"
    ),
    pytest.param(
        "0 9 * * *", "America/New_York", "2026-01-15T00:00:00+00:00", "2026-01-15T14:00:00+00:00", id="new-york-est"
    ),
    pytest.param(
        "0 23 31 12 *", "America/New_York", "2026-12-31T00:00:00+00:00", "2027-01-01T04:00:00+00:00", id="ny-new-year"
    ),
    # --- DST gaps (spring forward): the missing slot fires at the first instant after the gap
    pytest.param(
        "30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00+00:00", "2026-03-29T01:00:00+00:00", id="berlin-gap"
    ),
    pytest.param(
        "30 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00+00:00", "2026-03-30T00:30:00+00:00", id="berlin-gap-after"
    ),
    pytest.param(
        "0 3 * * *", "Europe/Berlin", "2026-03-28T12:00:00+00:00", "2026-03-29T01:00:00+00:00", id="berlin-gap-end-slot"
    ),
    pytest.param(
        "30 2 * * *", "America/New_York", "2026-03-07T12:00:00+00:00", "2026-03-08T07:00:00+00:00", id="ny-gap"
    ),
    pytest.param(
        "0 * * * *", "America/New_York", "2026-03-08T06:30:00+00:00", "2026-03-08T07:00:00+00:00", id="ny-gap-hourly"
    ),
    pytest.param(
        "0 * * * *", "America/New_York", "2026-03-08T07:00:00+00:00", "2026-03-08T08:00:00+00:00", id="ny-gap-hourly-2"
    ),
    pytest.param(
        "30 2 * * *", "Australia/Sydney", "2026-10-03T00:00:00+00:00", "2026-10-03T16:00:00+00:00", id="sydney-gap"
    ),
    pytest.param(
        "15 2 * * *", "Australia/Lord_Howe", "2026-10-03T00:00:00+00:00", "2026-10-03T15:30:00+00:00", id="lhi-gap"
    ),
    pytest.param(
        "15 2 * * *",
        "Australia/Lord_Howe",
        "2026-10-03T15:30:00+00:00",
        "2026-10-04T15:15:00+00:00",
        id="lhi-gap-after",
    ),
    pytest.param(
        "0 3 * * *", "Pacific/Chatham", "2026-09-26T00:00:00+00:00", "2026-09-26T14:00:00+00:00", id="chatham-gap"
    ),
    pytest.param(
        "0 3 * * *", "Pacific/Chatham", "2026-09-26T14:00:00+00:00", "2026-09-27T13:15:00+00:00", id="chatham-gap-after"
    ),
    # Samoa skipped the whole of 2011-12-30: its noon slot fires when 2011-12-31 begins.
    pytest.param(
        "0 12 * * *", "Pacific/Apia", "2011-12-29T23:00:00+00:00", "2011-12-30T10:00:00+00:00", id="apia-skipped-day"
    ),
    # --- DST overlaps (fall back): a repeated wall-clock slot fires at its first occurrence only
    pytest.param(
        "30 1 * * *", "America/New_York", "2026-10-31T12:00:00+00:00", "2026-11-01T05:30:00+00:00", id="ny-overlap"
    ),
    pytest.param(
        "30 1 * * *", "America/New_York", "2026-11-01T05:30:00+00:00", "2026-11-02T06:30:00+00:00", id="ny-overlap-once"
    ),
    pytest.param(
        "0 * * * *",
        "America/New_York",
        "2026-11-01T05:00:00+00:00",
        "2026-11-01T07:00:00+00:00",
        id="ny-overlap-hourly",
    ),
    pytest.param(
        "*/20 * * * *",
        "America/New_York",
        "2026-11-01T06:10:00+00:00",
        "2026-11-01T07:00:00+00:00",
        id="ny-second-pass",
    ),
    pytest.param(
        "*/20 * * * *", "America/New_York", "2026-11-01T05:50:00+00:00", "2026-11-01T07:00:00+00:00", id="ny-first-pass"
    ),
    pytest.param(
        "30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00+00:00", "2026-10-25T00:30:00+00:00", id="berlin-overlap"
    ),
    pytest.param(
        "30 2 * * *",
        "Europe/Berlin",
        "2026-10-25T00:30:00+00:00",
        "2026-10-26T01:30:00+00:00",
        id="berlin-overlap-once",
    ),
    pytest.param(
        "30 2 * * *", "Australia/Sydney", "2026-04-04T00:00:00+00:00", "2026-04-04T15:30:00+00:00", id="sydney-overlap"
    ),
    pytest.param(
        "30 2 * * *", "Australia/Sydney", "2026-04-04T15:30:00+00:00", "2026-04-05T16:30:00+00:00", id="sydney-once"
    ),
    pytest.param(
        "45 1 * * *", "Australia/Lord_Howe", "2026-04-04T00:00:00+00:00", "2026-04-04T14:45:00+00:00", id="lhi-overlap"
    ),
    pytest.param(
        "45 1 * * *", "Australia/Lord_Howe", "2026-04-04T14:45:00+00:00", "2026-04-05T15:15:00+00:00", id="lhi-once"
    ),
    pytest.param(
        "*/10 * * * *", "Australia/Lord_Howe", "2026-04-04T14:55:00+00:00", "2026-04-04T15:30:00+00:00", id="lhi-30min"
    ),
    pytest.param(
        "0 3 * * *", "Pacific/Chatham", "2026-04-04T00:00:00+00:00", "2026-04-04T13:15:00+00:00", id="chatham-overlap"
    ),
    pytest.param(
        "0 3 * * *", "Pacific/Chatham", "2026-04-04T13:15:00+00:00", "2026-04-05T14:15:00+00:00", id="chatham-once"
    ),
]


@pytest.mark.parametrize(("expression", "zone", "moment", "expected"), NEXT_AFTER_CASES)
def test_next_after(expression: str, zone: str, moment: str, expected: str) -> None:
    result = parse_cron(expression).next_after(at(moment), zone)
    assert result == at(expected)
    assert result.tzinfo is UTC


# Consecutive fire times, to show that collapsed and repeated slots are never doubled.
SEQUENCE_CASES = [
    pytest.param(
        "*/15 2 * * *",
        "Europe/Berlin",
        "2026-03-29T00:00:00+00:00",
        ["2026-03-29T01:00:00+00:00", "2026-03-30T00:00:00+00:00", "2026-03-30T00:15:00+00:00"],
        id="berlin-gap-collapses",
    ),
    pytest.param(
        "30 2,3 * * *",
        "Europe/Berlin",
        "2026-03-28T12:00:00+00:00",
        ["2026-03-29T01:00:00+00:00", "2026-03-29T01:30:00+00:00", "2026-03-30T00:30:00+00:00"],
        id="berlin-gap-then-real-slot",
    ),
    pytest.param(
        "0 * * * *",
        "America/New_York",
        "2026-11-01T04:30:00+00:00",
        ["2026-11-01T05:00:00+00:00", "2026-11-01T07:00:00+00:00", "2026-11-01T08:00:00+00:00"],
        id="ny-overlap-hourly",
    ),
    pytest.param(
        "0 12 * * *",
        "Pacific/Apia",
        "2011-12-29T00:00:00+00:00",
        ["2011-12-29T22:00:00+00:00", "2011-12-30T10:00:00+00:00", "2011-12-30T22:00:00+00:00"],
        id="apia-dateline-jump",
    ),
]


@pytest.mark.parametrize(("expression", "zone", "moment", "expected"), SEQUENCE_CASES)
def test_next_after_sequence(expression: str, zone: str, moment: str, expected: list[str]) -> None:
    schedule = parse_cron(expression)
    current = at(moment)
    runs = []
    for _ in expected:
        current = schedule.next_after(current, zone)
        runs.append(current)
    assert runs == [at(text) for text in expected]


# (expression, field, fragment of the reason)
SYNTAX_ERROR_CASES = [
    pytest.param("", None, "empty", id="empty"),
    pytest.param("   ", None, "empty", id="blank"),
    pytest.param("* * * *", None, "expected 5 fields", id="four-fields"),
    pytest.param("0 * * * * *", None, "seconds and year fields are not supported", id="six-fields"),
    pytest.param("0 0 * * * * 2026", None, "seconds and year fields are not supported", id="seven-fields"),
    pytest.param("* * * * * * * *", None, "got 8", id="eight-fields"),
    pytest.param("@reboot", None, "'@' macros", id="reboot"),
    pytest.param("@daily", None, "write '0 0 * * *' instead", id="daily"),
    pytest.param("@hourly", None, "'@' macros", id="hourly"),
    pytest.param("@every 5m", None, "'@' macros", id="every"),
    pytest.param("60 * * * *", "minute", "60 is out of range 0-59", id="minute-60"),
    pytest.param("* 24 * * *", "hour", "24 is out of range 0-23", id="hour-24"),
    pytest.param("* * 0 * *", "day-of-month", "0 is out of range 1-31", id="dom-0"),
    pytest.param("* * 32 * *", "day-of-month", "32 is out of range 1-31", id="dom-32"),
    pytest.param("* * * 0 *", "month", "0 is out of range 1-12", id="month-0"),
    pytest.param("* * * 13 *", "month", "13 is out of range 1-12", id="month-13"),
    pytest.param("* * * * 8", "day-of-week", "8 is out of range 0-7", id="weekday-8"),
    pytest.param("*/0 * * * *", "minute", "must be a positive integer", id="zero-step"),
    pytest.param("*/-1 * * * *", "minute", "must be a positive integer", id="negative-step"),
    pytest.param("*/ * * * *", "minute", "must be a positive integer", id="missing-step"),
    pytest.param("*/2/3 * * * *", "minute", "must be a positive integer", id="double-step"),
    pytest.param("/5 * * * *", "minute", "missing a value before '/'", id="step-without-base"),
    pytest.param("1,,2 * * * *", "minute", "empty list item", id="empty-item"),
    pytest.param("1, * * * *", "minute", "empty list item", id="trailing-comma"),
    pytest.param("* ,3 * * *", "hour", "empty list item", id="leading-comma"),
    pytest.param("5-1 * * * *", "minute", "reversed", id="reversed"),
    pytest.param("* * * * FRI-MON", "day-of-week", "reversed", id="reversed-names"),
    pytest.param("* * * * FRI-SUN", "day-of-week", "write 7 for a Sunday", id="reversed-to-sunday"),
    pytest.param("-5 * * * *", "minute", "not a valid range", id="negative-value"),
    pytest.param("1-2-3 * * * *", "minute", "not a valid range", id="double-range"),
    pytest.param("*-5 * * * *", "minute", "'*' can only be used on its own", id="star-range"),
    pytest.param("* * * FOO *", "month", "unknown name 'FOO'", id="unknown-month"),
    pytest.param("* * * * MONDAY", "day-of-week", "unknown name 'MONDAY'", id="long-weekday-name"),
    pytest.param("* * * MON *", "month", "day-of-week name", id="weekday-in-month"),
    pytest.param("* * * * JAN", "day-of-week", "month name", id="month-in-weekday"),
    pytest.param("JAN * * * *", "minute", "month name", id="month-in-minute"),
    pytest.param("x * * * *", "minute", "'x' is not a number", id="junk-letter"),
    pytest.param("1.5 * * * *", "minute", "'1.5' is not a number", id="junk-decimal"),
    pytest.param("* * * * 1!", "day-of-week", "is not a number or a name", id="junk-symbol"),
    pytest.param("\u0663 * * * *", "minute", "is not a number", id="non-ascii-digit"),
    pytest.param("? * * * *", "minute", "'?' is only allowed", id="question-minute"),
    pytest.param("* * * ? *", "month", "'?' is only allowed", id="question-month"),
    pytest.param("* * ?,1 * *", "day-of-month", "'?' must be the whole field", id="question-in-list"),
    pytest.param("* * L * *", "day-of-month", "'L' (last) modifier", id="last-day"),
    pytest.param("* * L-3 * *", "day-of-month", "'L' (last) modifier", id="last-day-offset"),
    pytest.param("* * * * 5L", "day-of-week", "'L' (last) modifier", id="last-friday"),
    pytest.param("* * 15W * *", "day-of-month", "'W' (nearest weekday) modifier", id="nearest-weekday"),
    pytest.param("* * LW * *", "day-of-month", "'W' (nearest weekday) modifier", id="last-weekday"),
    pytest.param("* * * * 5#3", "day-of-week", "'#' (nth weekday of the month) modifier", id="nth-weekday"),
    pytest.param("0 0 30 2 *", "day-of-month", "never fires", id="feb-30"),
    pytest.param("0 0 31 4 *", "day-of-month", "never fires", id="april-31"),
    pytest.param("0 0 31 2,4,6,9,11 *", "day-of-month", "never fires", id="short-months-31"),
]


@pytest.mark.parametrize(("expression", "field", "reason"), SYNTAX_ERROR_CASES)
def test_syntax_errors(expression: str, field: str | None, reason: str) -> None:
    with pytest.raises(CronSyntaxError) as excinfo:
        parse_cron(expression)
    error = excinfo.value
    assert isinstance(error, ValueError)
    assert error.field == field
    assert reason in error.reason
    assert reason in str(error)
    assert repr(expression) in str(error)
    if field is not None:
        assert f"{field} field" in str(error)


@pytest.mark.parametrize(
    "expression",
    [
        "0 0 * JUL WED",
        "0 0 * APR SAT",
        "0 0 * jul,apr,Aug wed,Sat",
        "0 0 * Jan-Dec Sun-Sat",
        "0 0 ? * MON/2",
        "0 0 1-31/2 * *",
        "0 0 31 4 MON",
        "0 0 29 2 *",
        "  0\t0 *  *\n* ",
    ],
)
def test_valid_expressions_parse(expression: str) -> None:
    assert parse_cron(expression).expression == expression


def test_never_fires_is_not_confused_with_or_rule() -> None:
    # With both day fields restricted either may match, so April Mondays still fire.
    assert parse_cron("0 0 31 4 MON").next_after(at("2026-04-06T00:00:00+00:00")) == at("2026-04-13T00:00:00+00:00")


def test_naive_moment_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_cron("* * * * *").next_after(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_cron("* * * * *").matches(datetime(2026, 1, 1))


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../etc/passwd", "Europe"])
def test_unknown_timezone(zone: str) -> None:
    with pytest.raises(ValueError, match="unknown timezone") as excinfo:
        parse_cron("* * * * *").next_after(at("2026-01-01T00:00:00+00:00"), zone)
    assert not isinstance(excinfo.value, KeyError)


def test_zoneinfo_instance_is_accepted() -> None:
    result = parse_cron("0 9 * * *").next_after(at("2026-01-01T00:00:00+00:00"), ZoneInfo("Asia/Kolkata"))
    assert result == at("2026-01-01T03:30:00+00:00")


def test_no_fire_time_before_year_10000() -> None:
    with pytest.raises(ValueError, match="no fire time"):
        parse_cron("0 0 1 1 *").next_after(datetime(9999, 6, 1, tzinfo=UTC))


def test_matches() -> None:
    berlin_gap = parse_cron("30 2 * * *")
    assert berlin_gap.matches(at("2026-03-29T01:00:00+00:00"), "Europe/Berlin")  # stands in for 02:30
    assert not berlin_gap.matches(at("2026-03-29T01:30:00+00:00"), "Europe/Berlin")
    assert berlin_gap.matches(at("2026-03-30T00:30:00+00:00"), "Europe/Berlin")
    assert not berlin_gap.matches(at("2026-03-30T00:30:01+00:00"), "Europe/Berlin")
    repeated = parse_cron("30 1 * * *")
    assert repeated.matches(at("2026-11-01T05:30:00+00:00"), "America/New_York")
    assert not repeated.matches(at("2026-11-01T06:30:00+00:00"), "America/New_York")
    assert parse_cron("0 0 13 * FRI").matches(at("2026-01-13T00:00:00+00:00"))


def test_equality_hash_and_repr() -> None:
    sunday = parse_cron("0 0 * * 0")
    assert sunday == parse_cron("0 0 * * 7") == parse_cron("0 0 * * sun")
    assert hash(sunday) == hash(parse_cron("0 0 * * SUN"))
    assert sunday != parse_cron("0 0 * * 1")
    # Same day sets, different day rule: `*/1` keeps the AND rule, `1-31` switches to OR.
    assert parse_cron("0 0 */1 * MON") != parse_cron("0 0 1-31 * MON")
    assert sunday != "0 0 * * 0"
    assert repr(sunday) == "CronExpression('0 0 * * 0')"
    assert sunday.expression == "0 0 * * 0"
    assert CronExpression("0 0 * * 0") == sunday


def test_immutable_and_picklable() -> None:
    schedule = parse_cron("*/5 * * * *")
    with pytest.raises(AttributeError):
        schedule.expression = "0 0 * * *"
    with pytest.raises(AttributeError):
        del schedule.expression
    assert not hasattr(schedule, "__dict__")
    assert pickle.loads(pickle.dumps(schedule)) == schedule

    with pytest.raises(CronSyntaxError) as excinfo:
        parse_cron("61 * * * *")
    restored = pickle.loads(pickle.dumps(excinfo.value))
    assert (restored.field, restored.reason, str(restored)) == ("minute", excinfo.value.reason, str(excinfo.value))


def test_public_api() -> None:
    assert cron.__all__ == sorted(cron.__all__)
    assert set(cron.__all__) == {"CronExpression", "CronSyntaxError", "parse_cron"}


def test_sparse_schedules_skip_by_field() -> None:
    # Fifty leap days from 2001: 2004..2096 and 2104..2196 are 48 (2100 and 2200 are not leap years).
    schedule = parse_cron("0 0 29 2 *")
    current = at("2001-01-01T00:00:00+00:00")
    for _ in range(50):
        current = schedule.next_after(current, "Europe/Berlin")
    assert current == at("2208-02-28T23:00:00+00:00")
