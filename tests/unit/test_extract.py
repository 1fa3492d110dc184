"""The relayed-family extractor on real etcd 3.4 and 3.5 payloads and on hand-made edge cases."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from exporter.metrics import FOLDED, RELAYED, RELAYED_WITH_VOLUME
from exporter.model import RelayedFamily
from exporter.scrape.errors import ScrapeError
from exporter.scrape.extract import WANTED, extract_families, parse_sample_line

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "metrics"
VERSIONS = ("3.4", "3.5")
# The relayed families each captured etcd does not have (apply: 3.5+; wal_write: 3.5.x after
# 3.5.1; range: 3.6+).
ABSENT = {
    "3.4": {
        "etcd_server_apply_duration_seconds",
        "etcd_disk_wal_write_duration_seconds",
        "etcd_server_range_duration_seconds",
    },
    "3.5": {"etcd_disk_wal_write_duration_seconds", "etcd_server_range_duration_seconds"},
}
GAUGES_NAMED_TOTAL = {
    "etcd_disk_wal_write_bytes_total",
    "etcd_server_proposals_committed_total",
    "etcd_server_proposals_applied_total",
}


def payload(version: str) -> str:
    return (FIXTURES / f"etcd-{version}.metrics").read_text()


Row = tuple[str, tuple[tuple[str, str], ...], float]


def reference_samples(text: str, family: str) -> list[Row]:
    """The samples prometheus_client's full parser finds for one of etcd's families."""
    return reference(text).get(family, [])


@functools.cache
def reference(text: str) -> dict[str, list[Row]]:
    """Every family's samples by prometheus_client's full parser, by etcd's family name."""
    out: dict[str, list[Row]] = {}
    for fam in text_string_to_metric_families(text):
        # prometheus_client names a counter family without its `_total`
        name = fam.name + "_total" if fam.type == "counter" else fam.name
        rows = out.setdefault(name, [])
        rows.extend((s.name, tuple(sorted(s.labels.items())), s.value) for s in fam.samples)
    return {name: sorted(rows) for name, rows in out.items()}


def ours(fam: RelayedFamily) -> list[Row]:
    return sorted((s.name, tuple(sorted(s.labels)), s.value) for s in fam.samples)


def summed_over(rows: list[Row], dropped: tuple[str, ...]) -> list[Row]:
    """`rows` added up per name and remaining labels (fold.py's job, done the plain way)."""
    sums: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for name, labels, value in rows:
        key = (name, tuple(kv for kv in labels if kv[0] not in dropped))
        sums[key] = sums.get(key, 0.0) + value
    return sorted((name, labels, value) for (name, labels), value in sums.items())


@pytest.mark.parametrize("version", VERSIONS)
def test_every_relayed_family_is_found_in_real_payloads(version: str) -> None:
    families = extract_families(payload(version))
    wanted = RELAYED_WITH_VOLUME + RELAYED
    assert [f.name for f in families] == [n for n in wanted if n not in ABSENT[version]]


@pytest.mark.parametrize("version", VERSIONS)
def test_samples_equal_prometheus_client_parser(version: str) -> None:
    text = payload(version)
    for fam in extract_families(text):
        want = reference_samples(text, fam.name)
        if fam.name in FOLDED:  # integer counts, and sums that add up exactly enough here
            got = [(n, lab, pytest.approx(v, rel=1e-12)) for n, lab, v in ours(fam)]
            assert got == summed_over(want, FOLDED[fam.name]), fam.name
        else:
            assert ours(fam) == want, fam.name


@pytest.mark.parametrize("version", VERSIONS)
def test_types_and_help_are_etcds(version: str) -> None:
    families = {f.name: f for f in extract_families(payload(version))}
    wal = families["etcd_disk_wal_fsync_duration_seconds"]
    assert wal.type == "histogram"
    assert wal.help == "The latency distributions of fsync called by WAL."
    assert [s.labels for s in wal.samples if s.name.endswith("_bucket")][-1] == (("le", "+Inf"),)
    assert families["etcd_server_slow_apply_total"].type == "counter"
    for name in GAUGES_NAMED_TOTAL:
        assert families[name].type == "gauge", name


@pytest.mark.parametrize("version", VERSIONS)
def test_peer_round_trip_keeps_etcds_to_label(version: str) -> None:
    rtt = {f.name: f for f in extract_families(payload(version))}[
        "etcd_network_peer_round_trip_time_seconds"
    ]
    peers = {dict(s.labels).get("To") for s in rtt.samples}
    assert len(peers) == 2  # a three-member cluster: two peers
    assert None not in peers


EDGE = r"""# HELP etcd_server_has_leader Whether or not a leader exists. 1 is existence, 0 is not.
# TYPE etcd_server_has_leader gauge
etcd_server_has_leader 1
# HELP etcd_network_peer_round_trip_time_seconds Round-Trip-Time \\ histogram\nbetween peers
# TYPE etcd_network_peer_round_trip_time_seconds histogram
@LONG@
etcd_network_peer_round_trip_time_seconds_bucket{ To = "p2" , le="+Inf", } +Inf
etcd_network_peer_round_trip_time_seconds_sum{To="p2"} NaN
etcd_network_peer_round_trip_time_seconds_count{To="p2"} -1E-3
# a comment that is not a header
etcd_server_is_leader 0
etcd_mvcc_db_total_size_in_bytes{} 2.147483648e+09
# HELP something_else not wanted
# TYPE something_else gauge
something_else{this is not valid at all
""".replace(
    "@LONG@",
    r'etcd_network_peer_round_trip_time_seconds_bucket{To="a\"b\\c\nd } ,x=\"y\"",le="0.0001"}'
    " 1.5e+03 1700000000000",
)


def test_edge_cases_of_the_text_format() -> None:
    families = {f.name: f for f in extract_families(EDGE)}
    assert set(families) == {
        "etcd_server_has_leader",
        "etcd_network_peer_round_trip_time_seconds",
        "etcd_server_is_leader",
        "etcd_mvcc_db_total_size_in_bytes",
    }
    rtt = families["etcd_network_peer_round_trip_time_seconds"]
    assert rtt.help == "Round-Trip-Time \\ histogram\nbetween peers"
    first, inf, total, count = rtt.samples
    assert first.labels == (("To", 'a"b\\c\nd } ,x="y"'), ("le", "0.0001"))
    assert first.value == 1500.0
    assert inf.labels == (("To", "p2"), ("le", "+Inf"))
    assert inf.value == math.inf
    assert math.isnan(total.value)
    assert count.value == -0.001
    # headerless sample lines are an untyped family
    assert families["etcd_server_is_leader"].type == "untyped"
    assert families["etcd_mvcc_db_total_size_in_bytes"].samples[0].labels == ()


def test_edge_cases_match_prometheus_client_parser() -> None:
    text = EDGE.split("# HELP something_else")[0]
    for fam in extract_families(text):
        got = [(n, lab, v) for n, lab, v in ours(fam) if not math.isnan(v)]
        want = [(n, lab, v) for n, lab, v in reference_samples(text, fam.name) if not math.isnan(v)]
        assert got == want, fam.name


def test_crlf_line_endings() -> None:
    text = payload("3.5").replace("\n", "\r\n")
    assert extract_families(text) == extract_families(payload("3.5"))


def test_only_wanted_families_are_parsed() -> None:
    garbage = "totally { broken line\n\x00\x01binary\n"
    text = garbage + payload("3.4") + garbage
    assert extract_families(text) == extract_families(payload("3.4"))


@pytest.mark.parametrize(
    "line",
    [
        "etcd_server_has_leader",
        "etcd_server_has_leader one",
        "etcd_server_has_leader 1 2 3",
        "etcd_server_has_leader 1_000",
        "etcd_server_has_leader 1 1.5",
        'etcd_server_has_leader{a="1" b="2"} 1',
        'etcd_server_has_leader{a="1",a="2"} 1',
        "etcd_server_has_leader{a=1} 1",
        'etcd_server_has_leader{a="1"',
        'etcd_server_has_leader{1a="x"} 1',
    ],
)
def test_malformed_wanted_sample_is_a_parse_error(line: str) -> None:
    text = f"# TYPE etcd_server_has_leader gauge\n{line}\n"
    with pytest.raises(ScrapeError) as err:
        extract_families(text)
    assert err.value.reason == "parse"


def test_wrong_sample_name_inside_a_family_is_a_parse_error() -> None:
    text = "# TYPE etcd_server_has_leader gauge\netcd_server_has_leader_bucket 1\n"
    with pytest.raises(ScrapeError, match="unexpected sample"):
        extract_families(text)


def test_unknown_type_is_a_parse_error() -> None:
    with pytest.raises(ScrapeError, match="unknown type"):
        extract_families("# TYPE etcd_server_has_leader stateset\netcd_server_has_leader 1\n")


@pytest.mark.parametrize(
    "text",
    ["", "\n", "<html>502 Bad Gateway</html>", "# TYPE go_goroutines gauge\ngo_goroutines 8\n"],
)
def test_no_wanted_family_is_a_parse_error(text: str) -> None:
    with pytest.raises(ScrapeError) as err:
        extract_families(text)
    assert err.value.reason == "parse"


def test_a_family_header_without_samples_is_left_out() -> None:
    text = (
        "# HELP etcd_disk_defrag_inflight x\n# TYPE etcd_disk_defrag_inflight gauge\n"
        "# HELP etcd_server_has_leader y\n# TYPE etcd_server_has_leader gauge\n"
        "etcd_server_has_leader 1\n"
    )
    assert [f.name for f in extract_families(text)] == ["etcd_server_has_leader"]


def test_parse_sample_line_drops_the_timestamp() -> None:
    sample = parse_sample_line('  x{le="1"} 2 1700000000000 ')
    assert (sample.name, sample.labels, sample.value) == ("x", (("le", "1"),), 2.0)


def test_wanted_is_every_relayed_name() -> None:
    assert set(WANTED) == set(RELAYED_WITH_VOLUME) | set(RELAYED)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
def test_arbitrary_text_gives_families_or_a_parse_error(noise: str) -> None:
    for text in (
        noise,
        f"# TYPE etcd_server_has_leader gauge\n{noise}",
        f"etcd_server_has_leader{noise}",
    ):
        try:
            families = extract_families(text)
        except ScrapeError as err:
            reason = err.reason
        else:
            reason = "ok"
            assert all(f.samples for f in families)
        assert reason in ("ok", "parse")
