"""Print the next three runs of a few cron expressions, from fixed start moments.

Run it with ``uv run python docs/examples/cron_next_runs.py``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from litestar_queues.cron import parse_cron

EXAMPLES = [
    # (expression, timezone, start moment)
    ("*/15 9-17 * * MON-FRI", "Europe/Berlin", datetime(2026, 1, 2, 16, 50, tzinfo=timezone.utc)),  # Friday evening
    ("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 28, 12, tzinfo=timezone.utc)),  # crosses the spring gap
    ("30 1 * * *", "America/New_York", datetime(2026, 10, 31, 12, tzinfo=timezone.utc)),  # crosses the fall overlap
]

EXPECTED = """\
*/15 9-17 * * MON-FRI [Europe/Berlin]
  2026-01-05 09:00 CET (08:00 UTC)
  2026-01-05 09:15 CET (08:15 UTC)
  2026-01-05 09:30 CET (08:30 UTC)
30 2 * * * [Europe/Berlin]
  2026-03-29 03:00 CEST (01:00 UTC)
  2026-03-30 02:30 CEST (00:30 UTC)
  2026-03-31 02:30 CEST (00:30 UTC)
30 1 * * * [America/New_York]
  2026-11-01 01:30 EDT (05:30 UTC)
  2026-11-02 01:30 EST (06:30 UTC)
  2026-11-03 01:30 EST (06:30 UTC)
"""


def next_runs(expression: str, zone: str, start: datetime, count: int = 3) -> list[datetime]:
    """Return the next ``count`` fire times (aware UTC datetimes) after ``start``."""
    schedule = parse_cron(expression)
    runs: list[datetime] = []
    moment = start
    for _ in range(count):
        moment = schedule.next_after(moment, zone)
        runs.append(moment)
    return runs


def render() -> str:
    """Format the runs of every example, each in its own wall-clock time and in UTC."""
    lines = []
    for expression, zone, start in EXAMPLES:
        lines.append(f"{expression} [{zone}]")
        for run in next_runs(expression, zone, start):
            local = run.astimezone(ZoneInfo(zone))
            lines.append(f"  {local:%Y-%m-%d %H:%M %Z} ({run:%H:%M} UTC)")
    return "\n".join(lines) + "\n"


def main() -> None:
    output = render()
    print(output, end="")
    assert output == EXPECTED, output


if __name__ == "__main__":
    main()
