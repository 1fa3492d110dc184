"""Scrape stage: fetch etcd /metrics and extract only the relayed families."""
