"""/metrics: the exposition formats rendered straight from the collector's walk.

prometheus_client formats every label of every sample on each request (about 13 µs for a sample
with ten labels), which is seconds for 2,000 etcd members. Here each target's labels are rendered
once and merged with a sample's own labels through a cached format string. The output is
byte-identical to prometheus_client's encoders (tests compare them), content negotiation is
prometheus_client's own `choose_encoder`, and whatever this module does not handle (other
escaping schemes, `name[]` filters, a plain registry) goes to prometheus_client's handler.
"""

from __future__ import annotations

import functools

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from prometheus_client import exposition, openmetrics
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.registry import CollectorRegistry

from exporter.collector import (
    EtcdLatencyCollector,
    ExporterRegistry,
    Family,
    LabelBase,
    Labels,
    family_rank,
)
from exporter.metrics import relayed_name
from exporter.model import Sample as RelayedSample


def go_float(value: float) -> str:
    """prometheus_client's floatToGoString, minus its redundant checks (the hot path)."""
    text = repr(float(value))
    if text[-1] in "fn":  # inf, -inf, nan
        return {"inf": "+Inf", "-inf": "-Inf"}.get(text, "NaN")
    dot = text.find(".")
    if dot > 6 and value > 0:  # Go switches to exponents sooner than Python
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


FAST_ESCAPING = frozenset({openmetrics.exposition.UNDERSCORES, openmetrics.exposition.ALLOWUTF8})


class TextSink:
    """Collects sample lines per family; `render` writes them in either text format."""

    def __init__(self) -> None:
        self._heads: dict[str, Family] = {}
        self._lines: dict[str, list[str]] = {}
        self._names: dict[str, str] = {}

    def add(self, family: Family, sample: str, base: LabelBase, own: Labels, value: float) -> None:
        """One sample line, labels rendered through the target's cached LabelBase."""
        lines = self._lines.get(family.name)
        if lines is None:
            self._heads[family.name] = family
            lines = self._lines[family.name] = []
        labels = base.render(own)
        if labels:
            lines.append(f"{sample}{{{labels}}} {go_float(value)}\n")
        else:
            lines.append(f"{sample} {go_float(value)}\n")

    def add_relayed(
        self, family: Family, base: LabelBase, samples: tuple[RelayedSample, ...]
    ) -> None:
        """One target's samples of a relayed family: one list lookup, names renamed once."""
        lines = self._lines.get(family.name)
        if lines is None:
            self._heads[family.name] = family
            lines = self._lines[family.name] = []
        names = self._names
        render = base.render
        for s in samples:
            name = names.get(s.name)
            if name is None:
                name = names[s.name] = relayed_name(s.name)
            if s.labels:
                lines.append(f"{name}{{{render(s.labels)}}} {go_float(s.value)}\n")
            elif base.text:
                lines.append(f"{name}{{{base.text}}} {go_float(s.value)}\n")
            else:
                lines.append(f"{name} {go_float(s.value)}\n")

    def render(self, *, openmetrics: bool) -> str:
        """Families in the collector's order, each with its HELP and TYPE lines."""
        out: list[str] = []
        header = _om_header if openmetrics else _text_header
        for name in sorted(self._lines, key=family_rank):
            out.append(header(self._heads[name]))
            out.extend(self._lines[name])
        return "".join(out)


def _text_header(family: Family) -> str:
    """HELP and TYPE as prometheus_client's generate_latest writes them (text format 0.0.4)."""
    name, type_ = family.name, family.type
    if type_ == "counter":
        name += "_total"
    elif type_ == "info":
        name, type_ = name + "_info", "gauge"
    elif type_ == "unknown":
        type_ = "untyped"
    doc = family.help.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {doc}\n# TYPE {name} {type_}\n"


def _om_header(family: Family) -> str:
    """HELP and TYPE as prometheus_client's OpenMetrics generate_latest writes them."""
    doc = family.help.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return f"# HELP {family.name} {doc}\n# TYPE {family.name} {family.type}\n"


def render_collector(collector: EtcdLatencyCollector, *, openmetrics: bool) -> str:
    """Our collector's families in one exposition format, without the `# EOF` line."""
    sink = TextSink()
    collector.emit(sink)
    return sink.render(openmetrics=openmetrics)


def render(registry: ExporterRegistry, accept: str) -> tuple[bytes, str] | None:
    """The body and content type for `accept`, or None where prometheus_client must do it."""
    encoder, content_type = exposition.choose_encoder(accept)
    escaping = openmetrics.exposition.UNDERSCORES
    if isinstance(encoder, functools.partial):
        escaping = encoder.keywords.get("escaping", escaping)
    if escaping not in FAST_ESCAPING:
        return None
    is_om = content_type.startswith("application/openmetrics-text")
    ours = render_collector(registry.collector, openmetrics=is_om).encode("utf-8")
    return ours + encoder(registry.extras), content_type


def make_metrics_handler(registry: CollectorRegistry) -> Handler:
    """The /metrics handler: fast for an ExporterRegistry, prometheus_client's otherwise."""
    fallback = make_aiohttp_handler(registry)
    if not isinstance(registry, ExporterRegistry):
        return fallback

    async def metrics(request: web.Request) -> web.StreamResponse:
        if "name[]" in request.query:
            return await fallback(request)
        rendered = render(registry, ",".join(request.headers.getall(hdrs.ACCEPT, [])))
        if rendered is None:
            return await fallback(request)
        body, content_type = rendered
        response = web.Response(body=body, headers={hdrs.CONTENT_TYPE: content_type})
        response.enable_compression()
        return response

    return metrics
