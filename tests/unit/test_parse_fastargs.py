"""`parse`'s pydantic-free argument reader gives the settings parser's result or none at all."""

from __future__ import annotations

import os
import random
import typing

import pytest

from exporter.cli import fast_settings, load
from exporter.commands.parse.fastargs import OUTPUTS, FastParseArgs, fast_parse_args
from exporter.model import ENV_PREFIX, ParseOutput
from exporter.settings import ParseSettings

PLAIN = ["a.log", "b.log.gz", "/var/log/pods/shoot--a--b_etcd-main-0_1f/etcd/0.log", "-", "x"]
PLAIN += ["../etcd.log", "ä.log", "日志.log", "a=b", "a:b", "1", "1.5", "1e3", "1_000", "nan", "~"]
PLAIN += ["True", "False", "Null", "@args", "%s", "a#b", "x.log", "a.log"]
TRICKY = ["--output", "--output=json", "--output=events", "--output=summary", "--output="]
TRICKY += ["--output=JSON", "--output=bad", "--output= json", "json", "events", "summary", "JSON"]
TRICKY += ["--", "--out", "--out=json", "--outputs=json", "--help", "-h", "-x", "-1", "--files=a"]
TRICKY += ["", " ", "a,b", "a,", ",", "[a]", "[]", "[a,b]", "{}", '{"a":1}', "x{}", '"a"', "'a'"]
TRICKY += [" a", "a ", "a b", "a\tb", "a\nb", "a\u00a0b", "\u2028", "a\x00b", "a\\b", 'a"b']
TRICKY += ["null", "None", "none", "true", "false", "--output json", "-"]
ENVIRONMENTS = [
    {},
    {"UNRELATED": "1", "ETCD_LATENCYOUTPUT": "json", "MY_ETCD_LATENCY_OUTPUT": "json"},
    {ENV_PREFIX + "OUTPUT": "json"},
    {ENV_PREFIX.lower() + "files": "x.log"},
    {"Etcd_Latency_Output": "events"},
    {ENV_PREFIX + "UNKNOWN": "1"},
]


def random_args(rng: random.Random) -> list[str]:
    """Mostly plain names, an `--output` in front half the time, a tricky piece anywhere."""
    args = [rng.choice(PLAIN if rng.random() < 0.7 else TRICKY) for _ in range(rng.randrange(4))]
    if rng.random() < 0.5:
        value = rng.choice([*OUTPUTS, "JSON", "bad", ""])
        head = ["--output", value] if rng.random() < 0.5 else [f"--output={value}"]
        args = head + args
    return args


def clear_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.upper().startswith(ENV_PREFIX)]:
        monkeypatch.delenv(key)


@pytest.mark.parametrize("environ", ENVIRONMENTS, ids=lambda e: ",".join(e) or "empty")
def test_the_fast_path_gives_what_the_settings_parser_gives(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]
) -> None:
    clear_environment(monkeypatch)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    read_by_pydantic = any(k.upper().startswith(ENV_PREFIX) for k in environ)
    rng = random.Random(7)
    taken: list[FastParseArgs] = []
    refused = 0
    for _ in range(600):
        args = random_args(rng)
        fast = fast_parse_args(args, os.environ)
        if fast is None:
            refused += 1
            continue
        try:
            full = load(ParseSettings, "parse", args)
        except (SystemExit, Exception) as err:  # the settings parser refuses what was taken
            pytest.fail(f"the fast path took {args!r}, the settings parser: {err!r}")
        assert (list(fast.files), fast.output) == (full.files, full.output), args
        taken.append(fast)
    if read_by_pydantic:
        assert taken == []
        return
    # Both ways taken often, every output, several files and stdin by default among them.
    assert len(taken) > 150
    assert refused > 150
    assert {t.output for t in taken} == OUTPUTS
    assert any(len(t.files) > 2 for t in taken)
    assert any(t.files == ("-",) for t in taken)


@pytest.mark.parametrize(
    ("args", "files", "output"),
    [
        (["a.log"], ("a.log",), "summary"),
        (["--output", "json", "a.log", "b.log.gz"], ("a.log", "b.log.gz"), "json"),
        (["--output=events", "-"], ("-",), "events"),
        (["-"], ("-",), "summary"),
        ([], ("-",), "summary"),
    ],
)
def test_the_common_command_lines_take_the_fast_path(
    monkeypatch: pytest.MonkeyPatch, args: list[str], files: tuple[str, ...], output: str
) -> None:
    clear_environment(monkeypatch)
    fast = fast_settings("parse", args)
    assert fast == FastParseArgs(files=files, output=output)
    full = load(ParseSettings, "parse", args)
    assert (list(fast.files), fast.output) == (full.files, full.output)
    assert fast_settings("diagnose", args) is None


@pytest.mark.parametrize(
    "args",
    [
        ["a.log", "--output", "json"],  # an option after a file
        ["--output", "json", "--output", "events", "a.log"],  # repeated: the last one wins there
        ["--out", "json", "a.log"],  # abbreviated
        ["--", "a.log"],
        ["--output"],
        ["--help"],
        ["a,b.log"],  # two files there
        ["true"],  # refused there
    ],
)
def test_anything_else_goes_to_the_settings_parser(
    monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    clear_environment(monkeypatch)
    assert fast_parse_args(args, os.environ) is None
    assert fast_parse_args(["a.log"], {"etcd_latency_output": "json"}) is None


def test_the_fast_path_knows_every_setting_of_parse() -> None:
    """A new `parse` setting, or another set of outputs, needs the fast path taught (or gone)."""
    assert set(ParseSettings.model_fields) == {"files", "output"}
    assert ParseSettings.model_fields["output"].annotation == ParseOutput
    assert set(typing.get_args(ParseOutput)) == OUTPUTS == {"summary", "json", "events"}
    assert ParseSettings.model_config.get("env_prefix") == ENV_PREFIX
