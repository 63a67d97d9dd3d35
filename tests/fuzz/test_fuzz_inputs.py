"""Fuzz the string and mapping parsers: connector IDs, package specs, configuration."""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelmesh_connectors.client.config import (
    LoaderConfig,
    load_config,
    parse_config,
    parse_duration,
)
from modelmesh_connectors.errors import ConfigError
from modelmesh_connectors.package.ids import (
    ConnectorId,
    InvalidConnectorId,
    parse_connector_id,
)
from modelmesh_connectors.package.manifest import is_normalized_name
from modelmesh_connectors.package.requirements import (
    InvalidPackageSpec,
    LocalSpec,
    RequirementSpec,
    UrlSpec,
    parse_package_spec,
)
from tests.fuzz.contract import run_parser
from tests.fuzz.mutations import YAML_TOKENS, mutated, objects

BASE = Path("/fuzz-base")  # never touched: parse_config only joins paths onto it
_HEX64 = re.compile(r"[0-9a-f]{64}")

# -- connector IDs ---------------------------------------------------------------

segment = st.from_regex(r"[a-z0-9]{1,6}(-[a-z0-9]{1,6}){0,2}", fullmatch=True)
valid_ids = st.builds(
    lambda ns, name, n: f"{ns}.{name}.v{n}",
    segment,
    segment,
    st.integers(min_value=1, max_value=999_999_999),
)
id_like = st.builds(
    lambda parts, sep: sep.join(parts),
    st.lists(
        st.one_of(
            segment,
            st.sampled_from(
                ["", "v0", "v01", "V1", "v", "v-1", "v1\n", "a--b", "-a", "a-", "\u0661"]
            ),
            st.text(alphabet="v0123456789", min_size=1, max_size=12),
            st.just("v" + "1" * 4301),
            st.text(max_size=6),
        ),
        max_size=5,
    ),
    st.sampled_from([".", ".", ". ", "..", "\u2024"]),
)


@given(value=st.one_of(st.text(max_size=80), id_like, objects()))
def test_connector_id_random(value: Any) -> None:
    outcome = run_parser("connector_id", InvalidConnectorId, parse_connector_id, value)
    if outcome.value is not None:
        assert isinstance(value, str)
        assert str(outcome.value) == value  # a valid ID has exactly one spelling


@given(value=valid_ids)
def test_connector_id_round_trip(value: str) -> None:
    cid = parse_connector_id(value)
    assert str(cid) == value
    assert parse_connector_id(str(cid)) == cid
    namespace, name = value.rsplit(".", 2)[:2]
    assert cid == ConnectorId(namespace, name, int(value.rsplit(".v", 1)[1]))


# -- package specs ---------------------------------------------------------------

names = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,10}[A-Za-z0-9])?", fullmatch=True)
specifiers = st.sampled_from(
    [
        "",
        "==1.2.0",
        ">=1.1,<2",
        "~=1.0",
        "===1.0",
        "==1.*",
        "!=1.3",
        ">1",
        "<=2.0a1",
        "==1.0+local",
        "==",
        ">=,",
        "==1..0",
    ]
)
requirement_like = st.builds(
    lambda name, extras, spec, marker: f"{name}{extras}{spec}{marker}",
    names,
    st.sampled_from(["", "", "[x]", "[", "[x,y]"]),
    specifiers,
    st.sampled_from(["", "", "; python_version>'3'", ";", " @ https://x/y.zip"]),
)
hashes = st.one_of(st.from_regex(r"[0-9a-f]{64}", fullmatch=True), st.text(max_size=70))
url_like = st.builds(
    lambda scheme, host, path, frag: f"{scheme}{host}{path}{frag}",
    st.sampled_from(["https://", "http://", "HTTPS://", "ftp://", "file://", "://", "http:/"]),
    st.one_of(
        st.sampled_from(
            ["example.com", "127.0.0.1:8080", "[::1]", "[", "]", "[::1", "a@b", "\u2100", ""]
        ),
        st.text(max_size=12),
    ),
    st.sampled_from(["/p.zip", "", "/a b.zip", "/%zz", "?q=1"]),
    st.one_of(
        st.just(""), hashes.map(lambda h: "#sha256=" + h), st.text(max_size=10).map("#".__add__)
    ),
)
path_like = st.builds(
    str.__add__,
    st.sampled_from(["./", "../", "/", "~", "~/", "~root/", "~no-such-user-fuzz/", "", "."]),
    st.text(max_size=16),
).map(lambda p: p if p.strip() else p + "x.zip")


def check_package_spec(value: Any, base_dir: Path | None) -> None:
    outcome = run_parser(
        "package_spec", InvalidPackageSpec, parse_package_spec, value, base_dir=base_dir
    )
    spec = outcome.value
    if isinstance(spec, UrlSpec):
        assert spec.url.lower().startswith(("https://", "http://"))
        assert spec.sha256 is None or _HEX64.fullmatch(spec.sha256)
        assert "#" not in spec.url
    elif isinstance(spec, RequirementSpec):
        assert is_normalized_name(spec.name)
        assert spec.text == value.strip()
    elif isinstance(spec, LocalSpec):
        assert base_dir is None or spec.path.is_absolute()
    else:
        assert spec is None


@given(
    value=st.one_of(st.text(max_size=60), requirement_like, url_like, path_like, objects()),
    base_dir=st.sampled_from([None, BASE]),
)
def test_package_spec_random(value: Any, base_dir: Path | None) -> None:
    check_package_spec(value, base_dir)


@given(name=st.from_regex(r"[a-z0-9]{1,6}(-[a-z0-9]{1,6}){0,2}", fullmatch=True), spec=specifiers)
def test_package_spec_requirement_round_trip(name: str, spec: str) -> None:
    outcome = run_parser("package_spec", InvalidPackageSpec, parse_package_spec, f"  {name}{spec} ")
    if outcome.value is not None:
        assert isinstance(outcome.value, RequirementSpec)
        assert outcome.value.name == name
        assert outcome.value.text == f"{name}{spec}"


# -- configuration -----------------------------------------------------------------

durations = st.one_of(
    st.integers(min_value=-5, max_value=10**6),
    st.floats(),
    st.from_regex(r"\s*\d{1,5}(\.\d{1,3})?\s*[smhdw]?\s*", fullmatch=True),
    st.sampled_from(["", "5x", "-1s", "1e3", "inf", "nan", ".5s", "1 m", "\u0661s"]),
    st.builds(pow, st.just(10), st.integers(min_value=300, max_value=400)),
)
config_values: dict[str, st.SearchStrategy[Any]] = {
    "packages": st.lists(st.one_of(requirement_like, url_like, path_like, objects(4)), max_size=4),
    "index": st.one_of(url_like, st.lists(url_like, max_size=3)),
    "trust_root": path_like,
    "cache_dir": path_like,
    "lock_file": path_like,
    "bundle": path_like,
    "ca_bundle": path_like,
    "require_signatures": st.booleans(),
    "offline": st.booleans(),
    "prereleases": st.booleans(),
    "locked": st.booleans(),
    "allow_http": st.booleans(),
    "max_expired_age": durations,
    "metadata_max_age": durations,
    "timeouts": st.one_of(
        st.dictionaries(st.sampled_from(["connect", "read", "write"]), durations, max_size=3),
        objects(4),
    ),
    "retries": st.integers(min_value=-2, max_value=10),
    "max_metadata_bytes": st.integers(min_value=0, max_value=10**7),
    "concurrency": st.integers(min_value=-1, max_value=64),
}


@st.composite
def config_mappings(draw: st.DrawFn) -> Any:
    """A whole config or its section; each known key's value plausible or of a random type."""
    keys = draw(st.lists(st.sampled_from(sorted(config_values)), unique=True, max_size=8))
    section: dict[Any, Any] = {
        k: draw(config_values[k] | objects(4) if draw(st.booleans()) else config_values[k])
        for k in keys
    }
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        section[draw(st.text(max_size=10) | st.integers())] = draw(objects(4))
    shape = draw(st.sampled_from(["section", "whole", "whole-null", "other"]))
    if shape == "whole":
        return {"connectors": section, "providers": draw(objects(4))}
    if shape == "whole-null":
        return {"connectors": draw(st.none() | objects(4))}
    if shape == "other":
        return draw(objects())
    return section


def check_config(data: Any) -> None:
    outcome = run_parser("config", ConfigError, parse_config, data, base_dir=BASE)
    config = outcome.value
    if config is not None:
        assert isinstance(config, LoaderConfig)
        net = config.network
        for seconds in (
            config.max_expired_age,
            config.metadata_max_age,
            net.connect_timeout,
            net.read_timeout,
        ):
            assert isinstance(seconds, float) and math.isfinite(seconds) and seconds >= 0
        assert net.retries >= 0 and net.concurrency >= 1
        assert config.limits.max_metadata_bytes >= 1024
        assert all(
            u.endswith("/") and u.lower().startswith(("https://", "http://")) for u in config.index
        )
        for path in (
            config.trust_root,
            config.cache_dir,
            config.lock_file,
            config.bundle,
            net.ca_bundle,
        ):
            assert path is None or Path(path).is_absolute()
        if config.index or config.bundle:
            assert config.trust_root is not None
        if config.locked:
            assert config.lock_file is not None


@given(data=config_mappings())
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_config_random(data: Any) -> None:
    check_config(data)


@given(value=st.one_of(durations, objects()))
def test_parse_duration_random(value: Any) -> None:
    outcome = run_parser("config", ConfigError, parse_duration, value, key="fuzz")
    if outcome.value is not None:
        assert isinstance(outcome.value, float)
        assert math.isfinite(outcome.value) and outcome.value >= 0


@given(
    data=st.one_of(
        st.binary(max_size=512),
        config_mappings().map(lambda d: yaml.safe_dump(d if _dumpable(d) else {}).encode()),
        mutated(
            st.just(
                b"connectors:\n  packages: [acme-audit>=1]\n  index: https://x/\n  trust_root: k.json\n  timeouts: {connect: 5s}\n"
            ),
            tokens=YAML_TOKENS,
        ),
    )
)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_load_config_random_files(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "modelmesh.yaml"
        path.write_bytes(data)
        run_parser("load_config", ConfigError, load_config, path)


def _dumpable(value: Any) -> bool:
    try:
        yaml.safe_dump(value)
    except (yaml.YAMLError, ValueError, TypeError):
        return False
    return True
