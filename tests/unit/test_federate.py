"""Federation answers → per-member relayed families (exporter.scrape.federate's pure part).

`tests/fixtures/federate/shoot.federate` is a real Prometheus 2.42 answer (capture.py next to
it): three members of one namespace whose /metrics were the captured etcd payloads of
tests/fixtures/metrics. Reading it must give, per member, exactly what a direct scrape of the
same payload gives.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from exporter.cli import load
from exporter.commands.diagnose.table import render_table
from exporter.diagnosis.report import EtcdReport
from exporter.diagnosis.verdict import DiskEvidence, LogEvidence, judge
from exporter.metrics import RELAYED, RELAYED_WITH_VOLUME
from exporter.model import Identity, RelayedFamily, ScrapeSpec, Target
from exporter.scrape.extract import WANTED, extract_blocks, extract_payload
from exporter.scrape.federate import (
    ETCD_FAMILIES,
    OWN_LABELS,
    federate_url,
    match_selector,
    parse_federation,
)
from exporter.settings import DiagnoseSettings, RunSettings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ANSWER = (FIXTURES / "federate" / "shoot.federate").read_text()
NAMESPACE = "shoot--p1--a"
# pod → the etcd payload its Prometheus scraped (capture.py)
MEMBERS = {
    "etcd-main-0": "etcd-3.5.metrics",
    "etcd-main-1": "etcd-3.4.metrics",
    "etcd-events-0": "etcd-3.5.metrics",
}
JOBS = "kube-etcd3-(main|events)"


def direct(payload: str) -> tuple[RelayedFamily, ...]:
    return extract_payload((FIXTURES / "metrics" / payload).read_bytes())


def as_etcd_wrote(payload: str) -> list[RelayedFamily]:
    """The relayed families of a payload before folding."""
    text = (FIXTURES / "metrics" / payload).read_text()
    return [family for family, _ in extract_blocks("\n" + text, WANTED)]


@pytest.mark.parametrize("payload", ["etcd-3.4.metrics", "etcd-3.5.metrics"])
def test_type_and_help_table_is_what_etcd_registers(payload: str) -> None:
    assert set(ETCD_FAMILIES) == set(RELAYED_WITH_VOLUME + RELAYED)
    found = {f.name: (f.type, f.help) for f in as_etcd_wrote(payload)}
    assert found == {name: ETCD_FAMILIES[name] for name in found}
    # all but the families of later etcd versions (apply: 3.5; wal_write: 3.5.x after 3.5.1;
    # range: 3.6), whose TYPE and HELP are taken from etcd's source
    later = {
        "etcd_server_apply_duration_seconds",
        "etcd_disk_wal_write_duration_seconds",
        "etcd_server_range_duration_seconds",
    }
    assert set(ETCD_FAMILIES) - set(found) <= later


@pytest.mark.parametrize(("pod", "payload"), MEMBERS.items())
def test_each_member_gets_exactly_the_families_of_a_direct_scrape(pod: str, payload: str) -> None:
    answer = parse_federation(ANSWER)
    assert answer.malformed == 0
    assert answer.families(NAMESPACE, pod) == direct(payload)


def test_histogram_buckets_are_in_bound_order_with_their_le_labels() -> None:
    fsync = parse_federation(ANSWER).families(NAMESPACE, "etcd-main-0")[0]
    assert fsync.name == "etcd_disk_wal_fsync_duration_seconds"
    assert fsync.type == "histogram"
    buckets = [s for s in fsync.samples if s.name.endswith("_bucket")]
    bounds = [dict(s.labels)["le"] for s in buckets]
    assert bounds[-1] == "+Inf"
    assert [float(b) for b in bounds] == sorted(float(b) for b in bounds)
    assert len(bounds) == 15  # etcd: 0.001, 0.002, … 8.192 (14 bounds) and +Inf
    counts = [s.value for s in buckets]
    assert counts == sorted(counts)  # cumulative
    tail = [s.name for s in fsync.samples[len(buckets) :]]
    assert tail == [fsync.name + "_sum", fsync.name + "_count"]


def test_only_etcds_own_labels_remain() -> None:
    assert 'pod="etcd-main-0"' in ANSWER
    assert 'seed_api="' in ANSWER
    answer = parse_federation(ANSWER)
    seen: set[str] = set()
    for families in answer.members.values():
        for fam in families:
            for sample in fam.samples:
                seen.update(k for k, _ in sample.labels)
    # apply's `op`, `success` and `version` are summed away (metrics.FOLDED)
    assert seen == {"le", "To"}
    assert seen <= OWN_LABELS


def test_two_members_of_one_namespace_are_told_apart() -> None:
    answer = parse_federation(ANSWER)
    assert set(answer.members) == {(NAMESPACE, pod) for pod in MEMBERS}
    main0 = answer.families(NAMESPACE, "etcd-main-0")
    main1 = answer.families(NAMESPACE, "etcd-main-1")
    assert main0 != main1  # different etcd versions, different values
    # one series per member and name: the three payloads' series, before folding
    assert answer.series == sum(len(f.samples) for p in MEMBERS.values() for f in as_etcd_wrote(p))


def test_a_member_without_series_gets_nothing() -> None:
    answer = parse_federation(ANSWER)
    assert answer.families(NAMESPACE, "etcd-main-2") == ()
    assert answer.families("shoot--p1--b", "etcd-main-0") == ()


def test_line_order_does_not_matter() -> None:
    lines = ANSWER.splitlines()
    random.Random(7).shuffle(lines)
    shuffled = parse_federation("\n".join(lines))
    assert shuffled.members == parse_federation(ANSWER).members


def test_malformed_lines_are_counted_and_skipped() -> None:
    bad = [
        'etcd_server_has_leader{pod="etcd-main-0" 1',  # unclosed labels
        'etcd_server_is_leader{pod="etcd-main-0"} not-a-number',
        'etcd_disk_wal_fsync_duration_seconds_bucket{le="fast",namespace="shoot--p1--a",'
        'pod="etcd-main-0"} 3',  # a bucket without a numeric bound
        "\x00\x01 binary",
    ]
    lines = ANSWER.splitlines()
    for i, line in enumerate(bad):
        lines.insert(17 * (i + 1), line)
    answer = parse_federation("\n".join(lines))
    assert answer.malformed == len(bad)
    assert answer.first_malformed == bad[0]
    for pod, payload in MEMBERS.items():
        assert answer.families(NAMESPACE, pod) == direct(payload)


def test_an_answer_that_is_not_the_text_format_has_no_series() -> None:
    answer = parse_federation("<html><body>502 Bad Gateway</body></html>\n")
    assert (answer.series, answer.malformed, dict(answer.members)) == (0, 1, {})


def test_series_of_other_names_and_without_pod_are_ignored_not_malformed() -> None:
    extra = (
        'up{job="kube-etcd3-main",namespace="shoot--p1--a",pod="etcd-main-0"} 1 1700000000000\n'
        'etcd_server_has_leader{job="kube-etcd3-main",namespace="shoot--p1--a"} 1\n'
    )
    answer = parse_federation(extra + ANSWER)
    assert answer.malformed == 0
    assert answer.families(NAMESPACE, "etcd-main-0") == direct(MEMBERS["etcd-main-0"])


def test_one_pod_scraped_by_two_jobs_counts_once() -> None:
    twice = ANSWER + ANSWER.replace('job="kube-etcd3-main"', 'job="kube-etcd3-main-copy"')
    assert parse_federation(twice).members == parse_federation(ANSWER).members


def test_a_prometheus_without_namespace_labels_is_matched_by_pod() -> None:
    bare = re.sub(r'namespace="[^"]*",', "", ANSWER)
    assert 'namespace="' not in bare
    answer = parse_federation(bare)
    assert answer.families(NAMESPACE, "etcd-main-1") == direct(MEMBERS["etcd-main-1"])


def test_the_selector_matches_exactly_the_relayed_sample_names() -> None:
    selector = match_selector(JOBS)
    name_re = re.search(r'__name__=~"([^"]+)"', selector)
    job_re = re.search(r'job=~"([^"]+)"', selector)
    assert name_re is not None
    assert job_re is not None
    names = re.compile(name_re[1])  # Prometheus anchors matchers: fullmatch
    for payload in ("etcd-3.4.metrics", "etcd-3.5.metrics"):
        for fam in direct(payload):
            assert all(names.fullmatch(s.name) for s in fam.samples)
    assert not names.fullmatch("etcd_disk_wal_fsync_duration_seconds_created")
    assert not names.fullmatch("etcd_server_has_leader_total")
    assert not names.fullmatch("etcd_debugging_mvcc_db_total_size_in_bytes")
    assert re.compile(job_re[1]).fullmatch("kube-etcd3-events")
    assert not re.compile(job_re[1]).fullmatch("kube-etcd3-backup-restore-main")
    families = re.fullmatch(r"\(([^()]+)\)\(_bucket\|_sum\|_count\)\?", name_re[1])
    assert families is not None
    assert families[1].split("|") == list(WANTED)


def test_the_federate_url_carries_the_selector_once() -> None:
    url = federate_url("http://prometheus-shoot.shoot--p1--a.svc:80/", JOBS)
    assert url.startswith("http://prometheus-shoot.shoot--p1--a.svc:80/federate?match%5B%5D=")
    assert url.count("match%5B%5D=") == 1
    assert '"' not in url
    assert " " not in url


def test_source_flags_and_their_defaults() -> None:
    s = load(RunSettings, "run", ["--scrape.source=shoot-prometheus"])
    assert s.scrape.source == "shoot-prometheus"
    assert s.scrape.shoot_prometheus_url == "http://prometheus-shoot.{namespace}.svc:80"
    assert s.scrape.shoot_prometheus_jobs == JOBS
    assert load(RunSettings, "run", []).scrape.source == "etcd"
    d = load(DiagnoseSettings, "diagnose", ["--scrape.source=shoot-prometheus", "--window=2m"])
    assert (d.scrape.source, d.window) == ("shoot-prometheus", 120.0)


def test_source_problems_are_listed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        load(
            RunSettings,
            "run",
            [
                "--discovery=static",
                "--static.targets-file=t.yaml",
                "--scrape.source=shoot-prometheus",
                "--scrape.shoot-prometheus-url=prometheus-shoot:80",
            ],
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--scrape.source=shoot-prometheus needs --discovery=kubernetes" in err
    assert "--scrape.shoot-prometheus-url must be an http(s) URL" in err
    with pytest.raises(SystemExit):
        load(RunSettings, "run", ["--scrape.source=prometheus"])


def test_diagnose_table_names_the_source_when_it_is_not_etcd() -> None:
    def one(source: str) -> EtcdReport:
        spec = ScrapeSpec(url="http://p", source=source, namespace="shoot--p--a", pod="etcd-main-0")
        target = Target(
            key="shoot--p--a/etcd-main-0", identity=Identity(pod="etcd-main-0"), scrape=spec
        )
        disk, logs = DiskEvidence(True, window=120.0), LogEvidence(scope="in the last 1h")
        return EtcdReport(target, disk, logs, judge(volume=target.volume, disk=disk, logs=logs))

    shoot = render_table([one("shoot-prometheus")], window=120, since=3600)
    assert "relayed etcd metrics read from: shoot-prometheus (--scrape.source)" in shoot
    assert "read from" not in render_table([one("etcd")], window=120, since=3600)


def test_escaped_quotes_in_other_labels_take_the_general_parser() -> None:
    tricky = ANSWER.replace(
        'seed_api="https://api.seed.example"', 'seed_api="say \\"hi\\",pod=\\"etcd-main-9\\""'
    )
    assert tricky != ANSWER
    answer = parse_federation(tricky)
    assert answer.malformed == 0
    assert set(answer.members) == {(NAMESPACE, pod) for pod in MEMBERS}
    for pod, payload in MEMBERS.items():
        assert answer.families(NAMESPACE, pod) == direct(payload)
