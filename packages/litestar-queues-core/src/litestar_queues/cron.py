"""Five-field cron expressions evaluated in the wall-clock time of an IANA timezone.

The grammar is classic Vixie cron (``minute hour day-of-month month day-of-week``) without the
non-portable extensions (``@`` macros, ``L``, ``W``, ``#``, seconds and year fields), which are
rejected with a :class:`CronSyntaxError` naming the field and the reason.

Daylight-saving rules (see ``docs/cron.md``):

* A wall-clock slot that falls into a gap (clocks spring forward) fires once, at the first
  instant after the gap. Several skipped slots collapse into that single firing.
* A wall-clock slot that occurs twice (clocks fall back) fires once, at its first occurrence.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from datetime import MAXYEAR, date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import NamedTuple, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["CronExpression", "CronSyntaxError", "parse_cron"]

_UTC = timezone.utc
_SECOND = timedelta(seconds=1)
_MINUTE = timedelta(minutes=1)
_MICROSECOND = timedelta(microseconds=1)
# Dates and weekdays of the Gregorian calendar repeat every 400 years, so an expression that
# passed the parse-time "never fires" check is guaranteed to match within this many years.
_SEARCH_YEARS = 400
# Index = month; February counts its leap day because a schedule for the 29th is still valid.
_LONGEST_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_NUMBER = re.compile(r"[0-9]+")
_NAME = re.compile(r"[A-Za-z]+")
_LAST_MODIFIER = re.compile(r"[0-9]*L|L-?[0-9]*", re.IGNORECASE)
_WEEKDAY_MODIFIER = re.compile(r"[0-9]+W|LW", re.IGNORECASE)


class CronSyntaxError(ValueError):
    """A cron expression that cannot be parsed, or that can never fire.

    Attributes:
        field: The offending field (``minute``, ``hour``, ``day-of-month``, ``month`` or
            ``day-of-week``), or ``None`` when the expression as a whole is malformed.
        reason: Why the expression was rejected, without the surrounding context.
        expression: The expression text that was rejected.
    """

    def __init__(self, reason: str, *, field: str | None = None, expression: str = "") -> None:
        location = f"{field} field: " if field else ""
        super().__init__(f"invalid cron expression {expression!r}: {location}{reason}")
        self.field = field
        self.reason = reason
        self.expression = expression

    def __reduce__(self) -> tuple[object, ...]:
        # The default reduce would call __init__ with the formatted message only.
        return (_rebuild_syntax_error, (self.reason, self.field, self.expression))


def _rebuild_syntax_error(reason: str, field: str | None, expression: str) -> CronSyntaxError:
    return CronSyntaxError(reason, field=field, expression=expression)


class _FieldError(Exception):
    """Raised while parsing one field; turned into a CronSyntaxError with context by the caller."""


class _FieldSpec(NamedTuple):
    name: str
    low: int
    high: int
    # Upper end of `*` and `a/n`. Day-of-week stops at 6: 7 is only an alias for Sunday, and
    # counting it would make `1/2` mean Mon, Wed, Fri *and* Sun.
    open_high: int
    names: Mapping[str, int]
    allows_question: bool


_MINUTE_FIELD = _FieldSpec("minute", 0, 59, 59, {}, allows_question=False)
_HOUR_FIELD = _FieldSpec("hour", 0, 23, 23, {}, allows_question=False)
_DOM_FIELD = _FieldSpec("day-of-month", 1, 31, 31, {}, allows_question=True)
_MONTH_FIELD = _FieldSpec(
    "month", 1, 12, 12, {n: i for i, n in enumerate(_MONTH_NAMES, start=1)}, allows_question=False
)
_DOW_FIELD = _FieldSpec("day-of-week", 0, 7, 6, {n: i for i, n in enumerate(_WEEKDAY_NAMES)}, allows_question=True)
_FIELDS = (_MINUTE_FIELD, _HOUR_FIELD, _DOM_FIELD, _MONTH_FIELD, _DOW_FIELD)


def _parse_value(word: str, spec: _FieldSpec) -> int:
    if _NUMBER.fullmatch(word):
        value = int(word)
    elif _NAME.fullmatch(word) and word.upper() in spec.names:
        value = spec.names[word.upper()]
    else:
        raise _FieldError(_describe_bad_word(word, spec))
    if not spec.low <= value <= spec.high:
        raise _FieldError(f"{value} is out of range {spec.low}-{spec.high}")
    return value


def _describe_bad_word(word: str, spec: _FieldSpec) -> str:
    # Modifiers are recognised on whole words so that names such as JUL or WED are never mistaken for them.
    if _LAST_MODIFIER.fullmatch(word):
        return f"'L' (last) modifier in {word!r} is not supported"
    if _WEEKDAY_MODIFIER.fullmatch(word) or word.upper() == "W":
        return f"'W' (nearest weekday) modifier in {word!r} is not supported"
    if word == "*":
        return "'*' can only be used on its own or as '*/step'"
    if word == "?":
        return "'?' must be the whole field"
    if _NAME.fullmatch(word):
        upper = word.upper()
        for other in (_MONTH_FIELD, _DOW_FIELD):
            if upper in other.names:
                return f"{word!r} is a {other.name} name and cannot be used in the {spec.name} field"
        if spec.names:
            first, *_, last = spec.names
            return f"unknown name {word!r} (expected {first}-{last})"
    kind = "a number or a name" if spec.names else "a number"
    return f"{word!r} is not {kind}"


def _parse_item(item: str, spec: _FieldSpec) -> set[int]:
    """Expand one list item (``*``, ``a``, ``a-b``, with an optional ``/step``) into its values."""
    if "#" in item:
        raise _FieldError(f"'#' (nth weekday of the month) modifier in {item!r} is not supported")
    base, has_step, step_text = item.partition("/")
    step = 1
    if has_step:
        if not _NUMBER.fullmatch(step_text) or int(step_text) == 0:
            raise _FieldError(f"step in {item!r} must be a positive integer, got {step_text!r}")
        step = int(step_text)
        if not base:
            raise _FieldError(f"{item!r} is missing a value before '/'")
    if base == "*":
        start, end = spec.low, spec.open_high
    elif "-" in base:
        start_text, _, end_text = base.partition("-")
        if not start_text or not end_text or "-" in end_text:
            raise _FieldError(f"{base!r} is not a valid range (expected start-end)")
        start, end = _parse_value(start_text, spec), _parse_value(end_text, spec)
        if start > end:
            # Ranges never wrap around; a weekday range ending on Sunday needs 7 (FRI-SUN is 5-0).
            hint = "; write 7 for a Sunday at the end of a range" if spec is _DOW_FIELD and end == 0 else ""
            raise _FieldError(f"range {base!r} is reversed (start is greater than end){hint}")
    else:
        start = _parse_value(base, spec)
        # `a/n` means "a through the end of the field, every n".
        end = max(start, spec.open_high) if has_step else start
    # 7 is the second spelling of Sunday; fold it so both spellings compare equal.
    return {value % 7 if spec is _DOW_FIELD else value for value in range(start, end + 1, step)}


def _parse_field(text: str, spec: _FieldSpec, expression: str) -> frozenset[int]:
    values: set[int] = set()
    try:
        if text == "?":
            if not spec.allows_question:
                raise _FieldError("'?' is only allowed in the day-of-month and day-of-week fields")
            text = "*"
        for item in text.split(","):
            if not item:
                raise _FieldError(f"empty list item in {text!r}")
            values |= _parse_item(item, spec)
    except _FieldError as exc:
        raise CronSyntaxError(str(exc), field=spec.name, expression=expression) from None
    return frozenset(values)


class CronExpression:
    """A parsed five-field cron expression.

    Instances are immutable and hashable. Two instances are equal when they describe the same
    schedule, so ``parse_cron("0 0 * * 0") == parse_cron("0 0 * * SUN")``.

    Args:
        expression: The cron text, e.g. ``"*/15 9-17 * * MON-FRI"``.

    Raises:
        CronSyntaxError: If the expression is malformed or can never fire.

    Attributes:
        expression: The original expression text.
    """

    __slots__ = ("_day_or", "_days_of_month", "_days_of_week", "_hours", "_minutes", "_months", "expression")

    expression: str
    _minutes: tuple[int, ...]
    _hours: tuple[int, ...]
    _days_of_month: frozenset[int]
    _months: tuple[int, ...]
    _days_of_week: frozenset[int]
    _day_or: bool

    def __init__(self, expression: str) -> None:
        texts = expression.split()
        if not texts:
            raise CronSyntaxError("expression is empty", expression=expression)
        if texts[0].startswith("@"):
            macro = texts[0].lower()
            hint = f"; write {_MACROS[macro]!r} instead" if macro in _MACROS else ""
            raise CronSyntaxError(f"'@' macros such as {texts[0]!r} are not supported{hint}", expression=expression)
        if len(texts) != len(_FIELDS):
            extra = "; seconds and year fields are not supported" if len(texts) in (6, 7) else ""
            raise CronSyntaxError(
                f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(texts)}{extra}",
                expression=expression,
            )
        parsed = [_parse_field(text, spec, expression) for text, spec in zip(texts, _FIELDS, strict=True)]
        minutes, hours, days_of_month, months, days_of_week = parsed
        dom_text, month_text, dow_text = texts[2], texts[3], texts[4]
        # Vixie cron rule: a day field counts as unrestricted when it starts with `*` (including
        # `*/n`) or is `?`. Only when both day fields are restricted does either one suffice.
        day_or = not (dom_text.startswith(("*", "?")) or dow_text.startswith(("*", "?")))
        if not day_or and not any(day <= _LONGEST_MONTH[month] for month in months for day in days_of_month):
            raise CronSyntaxError(
                f"never fires: {dom_text!r} selects no day that exists in month {month_text!r}",
                field=_DOM_FIELD.name,
                expression=expression,
            )
        object.__setattr__(self, "expression", expression)
        object.__setattr__(self, "_minutes", tuple(sorted(minutes)))
        object.__setattr__(self, "_hours", tuple(sorted(hours)))
        object.__setattr__(self, "_days_of_month", days_of_month)
        object.__setattr__(self, "_months", tuple(sorted(months)))
        object.__setattr__(self, "_days_of_week", days_of_week)
        object.__setattr__(self, "_day_or", day_or)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[type[CronExpression], tuple[str]]:
        return (type(self), (self.expression,))

    def _key(self) -> tuple[object, ...]:
        return (self._minutes, self._hours, self._days_of_month, self._months, self._days_of_week, self._day_or)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CronExpression):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.expression!r})"

    def next_after(self, moment: datetime, timezone: str | ZoneInfo = "UTC") -> datetime:
        """Return the first fire time strictly after ``moment``.

        Args:
            moment: An aware datetime; seconds and microseconds are honoured.
            timezone: IANA name or ``ZoneInfo`` whose wall clock the expression is evaluated in.

        Returns:
            An aware datetime in UTC (``tzinfo=datetime.timezone.utc``).

        Raises:
            ValueError: If ``moment`` is naive, the timezone is unknown, or there is no fire time
                before the end of year 9999.
        """
        zone = _resolve_zone(timezone)
        _require_aware(moment)
        try:
            local = moment.astimezone(zone)
            # Slots at or before the moment's own wall-clock minute map to instants <= moment.
            slot = local.replace(tzinfo=None, second=0, microsecond=0, fold=0) + _MINUTE
            while True:
                slot = self._first_slot_from(slot)
                fire = _slot_instant(slot, zone)
                # Only false when `moment` is the second pass through a repeated hour, whose slots
                # already fired during the first pass.
                if fire > moment:
                    return fire
                slot += _MINUTE
        except OverflowError:
            raise ValueError(f"cron expression {self.expression!r} has no fire time after {moment}") from None

    def matches(self, moment: datetime, timezone: str | ZoneInfo = "UTC") -> bool:
        """Tell whether ``moment`` is one of the schedule's fire times.

        This is consistent with :meth:`next_after`: a repeated wall-clock time only matches at its
        first occurrence, and the first instant after a DST gap matches when any slot inside the
        gap (or the instant itself) matches.

        Args:
            moment: An aware datetime.
            timezone: IANA name or ``ZoneInfo`` whose wall clock the expression is evaluated in.

        Returns:
            ``True`` if the schedule fires exactly at ``moment``.

        Raises:
            ValueError: If ``moment`` is naive or the timezone is unknown.
        """
        zone = _resolve_zone(timezone)
        _require_aware(moment)
        local = moment.astimezone(zone)
        wall = local.replace(tzinfo=None)
        if local.fold == 0 and local.second == 0 and local.microsecond == 0 and self._matches_wall(wall):
            return True
        skipped = _offset(local) - _offset((moment - _MICROSECOND).astimezone(zone))
        if skipped <= timedelta(0):
            return False
        # `moment` ends a gap: it stands in for every slot in [wall - skipped, wall).
        first = wall - skipped
        if first.second or first.microsecond:
            first = first.replace(second=0, microsecond=0) + _MINUTE
        return first < wall and self._first_slot_from(first) < wall

    def _day_matches(self, day: int, weekday: int) -> bool:
        in_month = day in self._days_of_month
        in_week = weekday in self._days_of_week
        return (in_month or in_week) if self._day_or else (in_month and in_week)

    def _matches_wall(self, wall: datetime) -> bool:
        return (
            wall.minute in self._minutes
            and wall.hour in self._hours
            and wall.month in self._months
            and self._day_matches(wall.day, (wall.weekday() + 1) % 7)
        )

    def _first_slot_from(self, start: datetime) -> datetime:
        """Return the first matching naive wall-clock minute at or after ``start``."""
        start_day = start.date()
        for day in self._days_from(start_day):
            hour, minute = (start.hour, start.minute) if day == start_day else (0, 0)
            found = self._time_at_or_after(hour, minute)
            if found is not None:
                return datetime.combine(day, found)
        raise ValueError(f"cron expression {self.expression!r} has no fire time after {start}")

    def _days_from(self, first: date) -> Iterator[date]:
        # Skipping whole months keeps rare schedules (29 February, the 31st) cheap.
        for year in range(first.year, min(first.year + _SEARCH_YEARS, MAXYEAR) + 1):
            for month in self._months:
                if (year, month) < (first.year, first.month):
                    continue
                first_weekday, length = calendar.monthrange(year, month)
                start = first.day if (year, month) == (first.year, first.month) else 1
                for day in range(start, length + 1):
                    # monthrange counts Monday as 0; cron counts Sunday as 0.
                    if self._day_matches(day, (first_weekday + day) % 7):
                        yield date(year, month, day)

    def _time_at_or_after(self, hour: int, minute: int) -> time | None:
        index = bisect_left(self._hours, hour)
        if index < len(self._hours) and self._hours[index] == hour:
            minute_index = bisect_left(self._minutes, minute)
            if minute_index < len(self._minutes):
                return time(hour, self._minutes[minute_index])
            index += 1
        if index < len(self._hours):
            return time(self._hours[index], self._minutes[0])
        return None


# Schedules re-parse their expression on every tick; instances are immutable, so sharing them is safe.
@lru_cache(maxsize=256)
def parse_cron(expression: str) -> CronExpression:
    """Parse a five-field cron expression.

    Args:
        expression: The cron text, e.g. ``"0 9 * * MON-FRI"``.

    Returns:
        The parsed, immutable expression.

    Raises:
        CronSyntaxError: If the expression is malformed or can never fire.
    """
    return CronExpression(expression)


def _resolve_zone(zone: str | ZoneInfo) -> ZoneInfo:
    if isinstance(zone, ZoneInfo):
        return zone
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown timezone {zone!r}") from exc


def _require_aware(moment: datetime) -> None:
    if moment.utcoffset() is None:
        raise ValueError(f"moment must be timezone-aware, got naive {moment!r}")


def _offset(moment: datetime) -> timedelta:
    offset = moment.utcoffset()
    if offset is None:  # pragma: no cover - callers only pass datetimes produced by astimezone
        raise ValueError(f"{moment!r} has no UTC offset")
    return offset


def _slot_instant(slot: datetime, zone: ZoneInfo) -> datetime:
    """Map a naive wall-clock slot to the UTC instant it fires at."""
    first = slot.replace(tzinfo=zone, fold=0).astimezone(_UTC)
    second = slot.replace(tzinfo=zone, fold=1).astimezone(_UTC)
    # Equal for ordinary times; first < second for a repeated time, which fires at its first occurrence.
    if first <= second:
        return first
    # In a gap PEP 495 inverts the folds: `second` lies before the transition and `first` after it.
    return _transition_between(second, first, zone)


def _transition_between(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """Binary-search the instant in ``(before, after]`` where ``zone`` changes its UTC offset."""
    offset_before = _offset(before.astimezone(zone))
    while after - before > _SECOND:
        middle = before + (after - before) // _SECOND // 2 * _SECOND
        if _offset(middle.astimezone(zone)) == offset_before:
            before = middle
        else:
            after = middle
    return after
