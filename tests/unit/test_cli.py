"""Settings and CLI: flags, environment variables, every problem listed with exit code 2."""

from __future__ import annotations

import pytest

from exporter.cli import load, main
from exporter.settings import RunSettings


def test_defaults() -> None:
    s = load(RunSettings, "run", [])
    assert s.web.listen_address == ":18379"
    assert s.scrape.interval == 30.0
    assert s.discovery == "kubernetes"


def test_durations_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETCD_LATENCY_SCRAPE__INTERVAL", "1m30s")
    s = load(RunSettings, "run", ["--scrape.timeout=500ms", "--web.listen-address=127.0.0.1:9"])
    assert s.scrape.interval == 90.0
    assert s.scrape.timeout == 0.5
    assert s.web.listen_address == "127.0.0.1:9"


def test_every_problem_listed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        load(
            RunSettings,
            "run",
            ["--scrape.interval=abc", "--web.listen-address=nope", "--scrape.max-bytes=0"],
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--scrape.interval / ETCD_LATENCY_SCRAPE__INTERVAL" in err
    assert "--web.listen-address" in err
    assert "--scrape.max-bytes" in err
    assert "(3)" in err


def test_cross_field_problems(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        load(RunSettings, "run", ["--discovery=static", "--shard=2"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--static.targets-file is required" in err
    assert "--shard=2 must be below --total-shards=1" in err


def test_unknown_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    assert "unknown subcommand" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["{a}", "a\tb"])
def test_an_argument_the_settings_cannot_read_is_one_line_and_exit_2(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["parse", name])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("etcd-latency-exporter parse: invalid configuration")
    assert "Traceback" not in err
