"""Scrape stage: fetch etcd /metrics and extract only the relayed families."""

from exporter.scrape.client import make_session, scrape_once
from exporter.scrape.errors import ScrapeError
from exporter.scrape.extract import extract_families
from exporter.scrape.loop import scrape_loop
from exporter.scrape.tls import SSLContextCache

__all__ = [
    "SSLContextCache",
    "ScrapeError",
    "extract_families",
    "make_session",
    "scrape_loop",
    "scrape_once",
]
