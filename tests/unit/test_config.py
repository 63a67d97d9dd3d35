"""The connectors: section: strict parsing, clear errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelmesh_connectors import ConfigError
from modelmesh_connectors.client.config import (
    CACHE_ENV,
    LoaderConfig,
    load_config,
    parse_config,
    parse_duration,
)
from modelmesh_connectors.package.requirements import (
    LocalSpec,
    RequirementSpec,
    UrlSpec,
)


def test_full_example_parses(tmp_path: Path) -> None:
    (tmp_path / "mesh.yaml").write_text(
        "providers: {}\n"
        "connectors:\n"
        "  index: [https://a.example/idx, https://b.example/idx/]\n"
        "  trust_root: keys/root.json\n"
        "  cache_dir: cache\n"
        "  timeouts: {connect: 5s, read: 1m}\n"
        "  retries: 2\n"
        "  require_signatures: true\n"
        "  max_expired_age: 7d\n"
        "  packages:\n"
        "    - ./pkgs/local-dir\n"
        "    - dist/acme-audit-log-1.2.0.zip\n"
        "    - https://cdn.example/a.zip\n"
        "    - https://cdn.example/b.zip#sha256=" + "ab" * 32 + "\n"
        "    - acme-audit-log>=1.1,<2\n"
    )
    cfg = load_config(tmp_path / "mesh.yaml")
    assert cfg.index == ("https://a.example/idx/", "https://b.example/idx/")
    assert cfg.trust_root == tmp_path / "keys" / "root.json"
    assert cfg.cache_dir == tmp_path / "cache"
    assert (cfg.network.connect_timeout, cfg.network.read_timeout, cfg.network.retries) == (5.0, 60.0, 2)
    assert cfg.require_signatures is True
    assert cfg.max_expired_age == 7 * 86400
    kinds = [type(p) for p in cfg.packages]
    assert kinds == [LocalSpec, LocalSpec, UrlSpec, UrlSpec, RequirementSpec]
    assert cfg.packages[0] == LocalSpec(tmp_path / "pkgs" / "local-dir")
    assert cfg.packages[3] == UrlSpec("https://cdn.example/b.zip", "ab" * 32)
    req = cfg.packages[4]
    assert isinstance(req, RequirementSpec)
    assert req.name == "acme-audit-log"


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ({"require_signature": True}, r"unknown key\(s\) \['require_signature'\]"),
        ({"packages": "acme"}, "connectors.packages: expected a list"),
        ({"packages": ["acme["]}, r"connectors.packages\[0\]"),
        ({"packages": ["ftp://x/a.zip"]}, r"packages\[0\].*only https://"),
        ({"packages": ["https://x/a.zip#md5=abc"]}, r"packages\[0\].*sha256="),
        ({"packages": ["acme[extra]"]}, "extras"),
        ({"index": "ftp://x"}, r"connectors.index\[0\]"),
        ({"index": []}, "connectors.index"),
        ({"retries": -1}, "connectors.retries"),
        ({"retries": True}, "connectors.retries"),
        ({"offline": "yes"}, "connectors.offline: expected true or false"),
        ({"timeouts": {"connect": "soon"}}, "connectors.timeouts.connect"),
        ({"timeouts": {"total": 3}}, "connectors.timeouts"),
        ({"max_expired_age": -5}, "finite, non-negative"),
        ({"max_expired_age": 10**400}, "finite, non-negative"),
        ({"max_expired_age": "9" * 50}, "expected a duration"),
        ({"index": "https://x/"}, "connectors.trust_root: required"),
        ({"packages": ["acme-audit-log"]}, "connectors.trust_root: required"),
        ({"cache_dir": 3}, "connectors.cache_dir: expected a path"),
    ],
)
def test_bad_config_names_key(section: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_config({"connectors": section})


def test_section_alone_and_no_section() -> None:
    assert parse_config({"packages": []}).packages == ()
    assert parse_config({"providers": {}}).packages == ()


def test_bad_yaml_file_is_config_error(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("connectors: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(tmp_path / "x.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_cache_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env"))
    assert LoaderConfig().resolved_cache_dir() == tmp_path / "env"
    assert LoaderConfig(cache_dir=tmp_path / "cfg").resolved_cache_dir() == tmp_path / "cfg"
    monkeypatch.delenv(CACHE_ENV)
    assert "modelmesh-connectors" in str(LoaderConfig().resolved_cache_dir())


@pytest.mark.parametrize(("text", "seconds"), [(90, 90.0), ("30s", 30.0), ("5m", 300.0), ("12h", 43200.0), ("1.5d", 129600.0), ("2w", 1209600.0)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text, key="k") == seconds


def test_locked_defaults_lock_file_next_to_config(tmp_path: Path) -> None:
    cfg = parse_config({"locked": True}, base_dir=tmp_path)
    assert cfg.lock_file == tmp_path / "connectors.lock"


# -- regressions found by fuzzing (tests/fuzz): each was a foreign exception escaping ----------


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        # yaml's constructors and scanner raise ValueError/OverflowError/AttributeError
        (b"connectors: {max_expired_age: 2001-02-30}\n", "invalid scalar value: ValueError"),
        (b'connectors: {cache_dir: "\\U00110000"}\n', "invalid scalar value: ValueError"),
        (b"connectors: {max_expired_age: !!timestamp 5m}\n", "invalid scalar value: AttributeError"),
        (b"[" * 1000, "nesting is too deep"),  # RecursionError in yaml's composer
    ],
)
def test_yaml_library_errors_become_config_errors(tmp_path: Path, data: bytes, fragment: str) -> None:
    (tmp_path / "mesh.yaml").write_bytes(data)
    with pytest.raises(ConfigError, match="invalid YAML") as info:
        load_config(tmp_path / "mesh.yaml")
    assert fragment in str(info.value)


def test_config_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "mesh.yaml").write_bytes(b"connectors: {}\n\xff\n")
    with pytest.raises(ConfigError, match="configuration is not UTF-8"):
        load_config(tmp_path / "mesh.yaml")


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ({"max_expired_age": 10**400}, "connectors.max_expired_age: must be a finite"),
        ({"timeouts": {"connect": 10**400}}, "connectors.timeouts.connect: must be a finite"),
        ({"cache_dir": "~no-such-user-modelmesh"}, "connectors.cache_dir: cannot expand"),
        ({"cache_dir": "~\x00"}, "connectors.cache_dir: cannot expand"),
        ({"packages": ["~no-such-user-modelmesh/pkg"]}, "connectors.packages[0]"),
        ({"packages": ["~a\x00/pkg.zip"]}, "connectors.packages[0]"),
        ({"trust_root": "root.json", "packages": ["https://[::1#a"]}, "is not a valid URL"),
    ],
)
def test_hostile_values_are_config_errors(section: dict[str, object], fragment: str) -> None:
    # OverflowError from float(), RuntimeError/ValueError from expanduser(), ValueError from
    # urlsplit() used to escape parse_config.
    with pytest.raises(ConfigError) as info:
        parse_config(section)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"connectors:\n  metadata_max_age: 1" + b"0" * 400, "metadata_max_age: must be a finite"),
        (b"connectors: {cache_dir: '~no-such-user-modelmesh'}\n", "cannot expand"),
        (b'connectors: {cache_dir: "~\\0"}\n', "cannot expand"),
    ],
)
def test_hostile_values_in_a_file_are_config_errors(
    tmp_path: Path, data: bytes, fragment: str
) -> None:
    (tmp_path / "mesh.yaml").write_bytes(data)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "mesh.yaml")
    assert fragment in str(info.value)
