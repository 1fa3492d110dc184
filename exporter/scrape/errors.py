"""The one exception the scraper raises: a failed scrape, classified by a bounded reason."""

from __future__ import annotations

from exporter.metrics import SCRAPE_ERROR_REASONS


class ScrapeError(Exception):
    """A scrape that gave no usable families.

    `reason` is one of `metrics.SCRAPE_ERROR_REASONS` (the `reason` label of the error counter);
    `detail` is a short human-readable cause for the log line, never a label.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in SCRAPE_ERROR_REASONS:
            raise ValueError(f"unknown scrape error reason: {reason!r}")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
