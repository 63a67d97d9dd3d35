"""Pure parts of credentials and deadlines: redaction, origins, and their configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelmesh_connectors._internal.redact import redact_text, redact_url
from modelmesh_connectors.client.config import (
    parse_config,
    parse_index_urls,
    parse_rate,
)
from modelmesh_connectors.client.credentials import (
    Credentials,
    load_credentials,
    origin_of,
    strip_userinfo,
)
from modelmesh_connectors.errors import ConfigError


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:secret@idx.example.com/i/", "https://***@idx.example.com/i/"),
        ("https://token@idx.example.com/i/", "https://***@idx.example.com/i/"),
        ("https://a:b@c@idx.example.com:8443/", "https://***@idx.example.com:8443/"),
        (
            "https://cdn.example.com/x.zip?X-Amz-Signature=abc&v=1#sha256=00",
            "https://cdn.example.com/x.zip?X-Amz-Signature=***&v=***#sha256=00",
        ),
        ("https://idx.example.com/i/", "https://idx.example.com/i/"),
        ("acme-audit-log>=1.0", "acme-audit-log>=1.0"),
        ("http://[::1:bad", "http://[::1:bad"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert redact_url(shown) == shown  # idempotent


def test_redact_url_of_an_unparsable_url_still_hides_user_info() -> None:
    assert "secret" not in redact_url("http://u:secret@[::1:bad/")


def test_redact_text_masks_every_url_user_info() -> None:
    text = "from https://u:secret@a.example/x and http://tok@127.0.0.1:8/ ok"
    assert redact_text(text) == "from https://***@a.example/x and http://***@127.0.0.1:8/ ok"


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://Idx.Example.com/i/", "https://idx.example.com:443"),
        ("https://u:p@idx.example.com:443/", "https://idx.example.com:443"),
        ("http://127.0.0.1:8080/x", "http://127.0.0.1:8080"),
        ("http://[::1]/x", "http://[::1]:80"),
    ],
)
def test_origin_of(url: str, origin: str) -> None:
    assert origin_of(url) == origin


def test_strip_userinfo_makes_basic_auth() -> None:
    url, auth = strip_userinfo("https://us%40er:p%3Ass@h.example/i/")
    assert url == "https://h.example/i/"
    assert auth == "Basic dXNAZXI6cDpzcw=="  # base64("us@er:p:ss")
    assert strip_userinfo("https://h.example/") == ("https://h.example/", None)


def test_userinfo_wins_over_configured_token() -> None:
    creds = Credentials({"https://h.example:443": "Bearer t"})
    assert creds.header_for("https://h.example/x", userinfo="Basic x") == "Basic x"
    assert creds.header_for("https://h.example/x") == "Bearer t"


def test_load_credentials_reads_the_named_variable(tmp_path: Path) -> None:
    creds = load_credentials(
        {"https://h.example:443": "IDX_TOKEN"}, netrc_file=False, environ={"IDX_TOKEN": " t1 "}
    )
    assert creds.header_for("https://h.example/") == "Bearer t1"


def test_netrc_default_entry_is_ignored(tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine a.example login u password p\ndefault login d password q\n")
    creds = load_credentials({}, netrc_file=netrc)
    assert creds.header_for("https://a.example/") == "Basic dTpw"
    assert creds.header_for("https://b.example/") is None


def test_netrc_from_the_environment_variable(tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine a.example login u password p\n")
    creds = load_credentials({}, environ={"NETRC": str(netrc)})
    assert creds.header_for("https://a.example/") == "Basic dTpw"
    assert load_credentials({}, environ={"NETRC": str(tmp_path / "none")}).netrc_hosts == {}


# -- configuration ------------------------------------------------------------------------------


def test_timeouts_and_auth_parse(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "timeouts": {
                "connect": "5s",
                "read": 20,
                "transfer": "2m",
                "min_rate": "64KiB/s",
                "run": "1h",
            },
            "auth": {"https://Idx.Example.com": {"token_env": "IDX_TOKEN"}},
            "netrc": "my-netrc",
        },
        base_dir=tmp_path,
    )
    net = cfg.network
    assert (net.connect_timeout, net.read_timeout) == (5.0, 20.0)
    assert (net.transfer_timeout, net.min_rate, net.run_timeout) == (120.0, 65536.0, 3600.0)
    assert net.auth == (("https://idx.example.com:443", "IDX_TOKEN"),)
    assert net.netrc == tmp_path / "my-netrc"


def test_timeout_defaults_are_usable() -> None:
    net = parse_config({}).network
    assert (net.transfer_timeout, net.min_rate, net.run_timeout) == (60.0, 10240.0, 1800.0)
    assert net.netrc is True
    assert net.auth == ()


@pytest.mark.parametrize(
    ("value", "rate"),
    [(1000, 1000.0), ("10KiB/s", 10240.0), ("1MB/s", 1e6), ("2 mib", 2.0 * 2**20), ("500B/s", 500)],
)
def test_parse_rate(value: object, rate: float) -> None:
    assert parse_rate(value, key="timeouts.min_rate") == rate


@pytest.mark.parametrize("value", [0, -1, "fast", True, "0KiB/s", float("nan")])
def test_parse_rate_rejects(value: object) -> None:
    with pytest.raises(ConfigError, match="timeouts.min_rate"):
        parse_rate(value, key="timeouts.min_rate")


@pytest.mark.parametrize(
    "timeouts",
    [{"connect": 0}, {"transfer": 0}, {"run": "0s"}, {"total": "1m"}, {"min_rate": "slow"}],
)
def test_bad_timeouts_are_config_errors(timeouts: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="timeouts"):
        parse_config({"timeouts": timeouts})


@pytest.mark.parametrize(
    "auth",
    [
        {"https://h.example/index/": {"token_env": "T"}},  # a path: not an origin
        {"https://u:secret-x@h.example": {"token_env": "T"}},  # user info
        {"ftp://h.example": {"token_env": "T"}},
        {"https://h.example": {"token": "secret-x"}},  # the token itself, not a variable
        {"https://h.example": {"token_env": "secret x"}},
        {"https://h.example": "T"},
        ["https://h.example"],
    ],
)
def test_bad_auth_is_a_config_error_that_quotes_no_secret(auth: object) -> None:
    with pytest.raises(ConfigError, match="connectors.auth") as info:
        parse_config({"auth": auth})
    assert "secret" not in str(info.value)


def test_index_url_with_query_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError, match="query") as info:
        parse_index_urls(["https://h.example/i/?token=secret-x"])
    assert "secret-x" not in str(info.value)


def test_invalid_index_url_error_hides_user_info() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"index": ["ftp://u:secret-x@h.example/"]})
    assert "secret-x" not in str(info.value)


def test_an_unparsable_implicit_netrc_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine a.example login u password secret-x bogus token\n")
    creds = load_credentials({}, environ={"NETRC": str(netrc)})
    assert creds.netrc_hosts == {}
    assert "cannot read the netrc file" in caplog.text
    assert "secret-x" not in caplog.text
