"""A test copy of the rules file whose time scale is shrunk, so alerts fire within seconds.

Every range window (`[5m]`, `[10m]`) and every `for:` is multiplied by the same factor. Keeping
one factor keeps the relations the rules rely on: a `for:` as long as its rate window still means
that a single burst cannot fire, and a window still holds as many samples when the scrape interval
is scaled by the same factor (production: 30s scrapes; the end-to-end test: 1s, factor 1/30).
Production keeps the file's values; the Helm chart sets `for:` and thresholds per alert from its
values (`prometheusRule.alerts.<AlertName>`), which is how a deployment changes them.

`with_class_min_members` sets the members a StorageClass needs for its median p99, as the chart's
`prometheusRule.classMedian.minMembers` does: the end-to-end test has one member per class.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from exporter.durations import parse_duration

WINDOW = re.compile(r"\[([0-9]+[smhdwy])\]")
# The class median recording rules end with the minimum of members of a class (`… >= 5`).
MEDIAN_RECORD = re.compile(r"^storage_class:.+:p99_5m_median$")
TRAILING_MINIMUM = re.compile(r"(>=\s*)(\d+)(\s*)$")
FACTOR = 1 / 30  # 30s scrapes -> 1s scrapes


def _scaled(duration: str, factor: float) -> str:
    seconds = parse_duration(duration) * factor
    if seconds < 1:
        raise ValueError(f"{duration} scaled by {factor} is below one second")
    return f"{seconds:g}s"


def scale_rules(text: str, *, factor: float = FACTOR) -> str:
    """The rules file `text` with every range window and `for:` multiplied by `factor`."""
    doc: dict[str, Any] = yaml.safe_load(text)
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule["expr"] = WINDOW.sub(lambda m: f"[{_scaled(m.group(1), factor)}]", rule["expr"])
            if "for" in rule:
                rule["for"] = _scaled(rule["for"], factor)
    return yaml.safe_dump(doc, sort_keys=False, width=1000)


def with_class_min_members(text: str, members: int) -> str:
    """The rules file `text` with every class median recorded from `members` members on."""
    doc: dict[str, Any] = yaml.safe_load(text)
    changed = 0
    for group in doc["groups"]:
        for rule in group["rules"]:
            if MEDIAN_RECORD.match(rule.get("record", "")):
                rule["expr"], n = TRAILING_MINIMUM.subn(rf"\g<1>{members}\g<3>", rule["expr"])
                changed += n
    if changed == 0:
        raise ValueError("no class median recording rule ends with its minimum of members")
    return yaml.safe_dump(doc, sort_keys=False, width=1000)
