"""The command-line conventions a platform engineer expects, each shown by the console script.

``--version``; ``-v``/``-q`` anywhere and stacking; ``--json`` on every reporting command with
JSON errors; distinct, documented exit codes; shell completion; progress only on a terminal
(and the progress library imported only then); configuration discovery; ``--refresh``;
per-action help with defaults and examples. Most rows call ``main`` in this process, as a
subprocess would run it (tests/support/cli.py); what only a real process shows runs the
console script in a subprocess: ``--version``, the exit statuses, a terminal, Ctrl-C, and
which modules a fresh process imports.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelmesh_connectors.cli import build_parser
from modelmesh_connectors.cli.exit_codes import ExitCode
from modelmesh_connectors.publish.keyfiles import write_signing_key
from tests.support.cli import cli_env as env
from tests.support.cli import run_cli as run
from tests.support.http_server import LoopbackServer, Reply
from tests.support.packages import OBSERVABILITY_SOURCE, make_package
from tests.support.simulator import RepositorySimulator

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "modelmesh_connectors"]


def run_process(*args: object, cwd: Path | None = None, environ: dict[str, str] | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The console script in a real subprocess."""
    return subprocess.run(
        [*CLI, *map(str, args)], cwd=cwd, env=environ or env(), capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL, check=False,
    )


def run_on_terminal(cmd: list[str], environ: dict[str, str], *, cwd: Path | None = None,
                    interrupt_when: str | None = None, timeout: float = 120) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal; optionally send SIGINT once it printed a text."""
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    proc = subprocess.Popen(cmd, env=environ, cwd=cwd, stdout=subprocess.PIPE, stderr=slave,
                            stdin=subprocess.DEVNULL, text=True)
    try:
        if interrupt_when is not None:
            deadline = time.monotonic() + timeout
            while interrupt_when not in b"".join(chunks).decode(errors="replace"):
                assert time.monotonic() < deadline, b"".join(chunks).decode(errors="replace")
                assert proc.poll() is None, b"".join(chunks).decode(errors="replace")
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=timeout)
    finally:
        os.close(slave)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    os.close(master)
    return proc.returncode, out, b"".join(chunks).decode(errors="replace")


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RepositorySimulator]:
    with RepositorySimulator(tmp_path) as s:
        s.publish("acme-audit-log", "1.0.0")
        yield s


def write_config(path: Path, sim: RepositorySimulator, packages: list[str], **extra: Any) -> Path:
    path.write_text(yaml.safe_dump({"connectors": sim.config(packages, **extra)}))
    return path


# -- --version, -v / -q --------------------------------------------------------------------------


def test_version() -> None:
    done = run_process("--version")
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"modelmesh-connectors \d+\.\d+\.\d+\S* \(modelmesh-lite \S+, Python 3\.\d+\.\d+\)\n", done.stdout)


@pytest.mark.parametrize(
    ("args", "traceback"),
    [
        (["inspect", "{missing}"], False),
        (["-v", "inspect", "{missing}"], True),
        (["inspect", "{missing}", "-v"], True),
        (["inspect", "-v", "{missing}"], True),
        (["-v", "inspect", "{missing}", "-q"], False),  # stacked: +1 -1 = 0
        (["-q", "inspect", "{missing}", "-vv"], True),  # -1 +2 = 1
        (["-v", "inspect", "{missing}", "-v", "-q"], True),  # counts before the command word stay
    ],
)
def test_verbose_and_quiet_anywhere_and_stacked(tmp_path: Path, args: list[str], traceback: bool) -> None:
    done = run(*[a.format(missing=tmp_path / "missing.zip") for a in args])
    assert done.returncode == ExitCode.PACKAGE
    assert ("Traceback" in done.stderr) is traceback, done.stderr
    assert "error: " in done.stderr  # the one-line message is always there


def test_quiet_levels_hide_notes_then_the_result(tmp_path: Path) -> None:
    shown = run("list", "--type", "rotation")
    assert "modelmesh.stick-until-failure.v1" in shown.stdout
    assert run("-q", "list", "--type", "rotation").stdout == shown.stdout  # -q: result stays
    hidden = run("list", "--type", "rotation", "-qq")
    assert hidden.returncode == 0 and hidden.stdout == ""
    # -qq never hides an error
    failed = run("-qq", "inspect", tmp_path / "missing.zip")
    assert failed.returncode == ExitCode.PACKAGE and failed.stderr.startswith("error: ")


# -- --json everywhere, JSON errors ---------------------------------------------------------------


def _leaf_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for action in subs:
        for name, child in action.choices.items():
            yield from _leaf_commands(child, (*path, name))


def test_every_reporting_command_takes_json() -> None:
    leaves = dict(_leaf_commands(build_parser()))
    assert len(leaves) >= 24
    missing = [" ".join(p) for p, parser in leaves.items() if p != ("completion",) and "--json" not in parser._option_string_actions]
    assert missing == []


def test_json_output_of_a_whole_publish_and_install_cycle(tmp_path: Path) -> None:
    """Every command of the README walkthrough, with --json: each prints one JSON document."""
    keys = tmp_path / "keys"
    docs: dict[str, Any] = {}

    def j(name: str, *args: object, status: int = 0) -> Any:
        done = run(*args, "--json", cwd=tmp_path)
        assert done.returncode == status, (name, done.stdout, done.stderr)
        docs[name] = json.loads(done.stdout)
        return docs[name]

    for k in ("root-1", "index", "timestamp"):
        assert j(f"keygen {k}", "keygen", keys / f"{k}.pem")["keyid"]
    j("root init", "root", "init", "--root-key", keys / "root-1.pub.pem", "--index-key", keys / "index.pub.pem",
      "--timestamp-key", keys / "timestamp.pub.pem", "-o", tmp_path / "root.json")
    assert len(j("root sign", "root", "sign", tmp_path / "root.json", "--key", keys / "root-1.pem")["signatures"]) == 1
    signers = ["--index-key", keys / "index.pem", "--timestamp-key", keys / "timestamp.pem"]
    assert j("init", "init", "--index", tmp_path / "site", "--root", tmp_path / "root.json", *signers)["index"]
    source = make_package(tmp_path / "src", "acme-audit-log", "1.0.0")
    packed = j("pack", "pack", source, "-o", f"{tmp_path / 'dist'}{os.sep}")
    assert packed["checks"]["ok"] is True
    assert j("inspect", "inspect", packed["path"])["ok"] is True
    published = j("publish", "publish", packed["path"], "--index", tmp_path / "site", *signers)
    assert published["version"] == "1.0.0" and published["checks"]["ok"]
    assert j("timestamp", "timestamp", "--index", tmp_path / "site", "--timestamp-key", keys / "timestamp.pem")["version"] == 3
    assert j("refresh", "refresh", "--index", tmp_path / "site", *signers)["version"] == 3
    assert j("resign", "resign", "--index", tmp_path / "site", "--release-key", keys / "index.pem", *signers)["resigned"] == []
    assert j("verify", "verify", tmp_path / "site", "--root", tmp_path / "root.json")["ok"] is True
    assert j("list", "list", "--type", "storage")
    # The client side, against the published index served on loopback.
    with LoopbackServer(tmp_path / "site") as server:
        config = tmp_path / "modelmesh.yaml"
        config.write_text(yaml.safe_dump({"connectors": {
            "index": server.base_url.rstrip("/") + "/", "trust_root": str(tmp_path / "root.json"),
            "cache_dir": str(tmp_path / "cache"), "packages": ["acme-audit-log>=1"], "retries": 0,
        }}))
        installed = j("install", "install", "acme-audit-log>=1")
        assert installed["installed"][0]["version"] == "1.0.0"
        assert any(r["id"] == "acme.audit-log.v1" for r in j("load", "load"))
        assert j("lock", "lock")["entries"][0]["version"] == "1.0.0"
        assert j("mirror", "mirror", "--to", tmp_path / "carry")["report"]
        assert len(j("cache list", "cache", "list")["archives"]) == 1
        assert j("cache verify", "cache", "verify")["corrupt_removed"] == []
        assert j("cache prune", "cache", "prune", "--dry-run")[0]["kept"]
    assert j("yank", "yank", "acme-audit-log", "1.0.0", "--reason", "test", "--index", tmp_path / "site", *signers)["reason"] == "test"


def test_errors_are_json_with_json(tmp_path: Path) -> None:
    missing = run("inspect", tmp_path / "missing.zip", "--json")
    assert missing.returncode == ExitCode.PACKAGE
    error = json.loads(missing.stdout)["error"]
    assert error["type"] == "PackageError"
    assert "missing.zip" in error["message"] and "hint" in error
    # A usage error too, wherever --json stands.
    usage = run("install", "x", "--no-such-option", "--json")
    assert usage.returncode == ExitCode.USAGE
    assert json.loads(usage.stdout)["error"]["type"] == "UsageError"
    assert "--no-such-option" in json.loads(usage.stdout)["error"]["message"]
    # Without --json: plain lines on stderr, nothing on stdout.
    plain = run("inspect", tmp_path / "missing.zip")
    assert plain.stdout == "" and plain.stderr.startswith("error: ")


# -- exit codes -----------------------------------------------------------------------------------


def test_exit_codes_are_distinct_per_failure_class(sim: RepositorySimulator, tmp_path: Path) -> None:
    common = ["--trust-root", sim.trust_root, "--cache-dir", tmp_path / "c"]
    with socket_closed_port() as port:
        # retries: 0, so the refused connection is not retried with seconds of backoff
        unreachable = tmp_path / "unreachable.yaml"
        unreachable.write_text(yaml.safe_dump({"connectors": {
            "index": f"http://127.0.0.1:{port}/", "trust_root": str(sim.trust_root),
            "cache_dir": str(tmp_path / "c"), "packages": [], "retries": 0}}))
        network = run_process("install", "acme-audit-log", "--config", unreachable)
    assert network.returncode == ExitCode.NETWORK, network.stderr
    assert run_process("install", "nope", "--index", sim.url, *common).returncode == ExitCode.RESOLUTION
    assert run_process("no-such-command").returncode == ExitCode.USAGE
    (tmp_path / "bad.yaml").write_text("connectors:\n  no_such_key: 1\n")
    assert run_process("load", "--config", tmp_path / "bad.yaml").returncode == ExitCode.CONFIG
    assert run_process("inspect", tmp_path / "missing.zip").returncode == ExitCode.PACKAGE
    # Attack or corruption: one flipped byte of the archive the index signs.
    sim.corrupt("archives/acme-audit-log/acme-audit-log-1.0.0.zip")
    trust = run_process("install", "acme-audit-log", "--index", sim.url, *common)
    assert trust.returncode == ExitCode.TRUST, trust.stderr
    assert "sha256" in trust.stderr
    # A publisher refusal: that version is already published.
    write_signing_key(tmp_path / "index.pem", sim.index_key, None)
    write_signing_key(tmp_path / "ts.pem", sim.timestamp_key, None)
    refused = run_process("publish", sim.build_archive("acme-audit-log", "1.0.0"), "--index", sim.dir,
                  "--index-key", tmp_path / "index.pem", "--timestamp-key", tmp_path / "ts.pem")
    assert refused.returncode == ExitCode.PUBLISH, refused.stderr
    assert "already published" in refused.stderr
    codes = {network.returncode, trust.returncode, refused.returncode, ExitCode.USAGE, ExitCode.CONFIG, ExitCode.PACKAGE, ExitCode.RESOLUTION}
    assert len(codes) == 7


class socket_closed_port:
    """A loopback port nothing listens on."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        return None


def test_exit_codes_are_documented_in_the_readme_and_help() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- exit-codes -->")[1].split("<!-- /exit-codes -->")[0]
    documented = {int(m) for m in re.findall(r"(?m)^\| (\d+) \|", table)}
    assert documented == {int(c) for c in ExitCode}
    main_help = run("--help").stdout
    for code in ExitCode:
        if code is not ExitCode.OK:
            assert re.search(rf"\b{int(code)} [a-z]", main_help), code


# -- completion ------------------------------------------------------------------------------------


def test_shell_completion_scripts(tmp_path: Path) -> None:
    bash = run("completion", "bash")
    assert bash.returncode == 0, bash.stderr
    for word in ("install", "prune", "--refresh", "--allow-failing-checks", "--release-key"):
        assert word in bash.stdout
    script = tmp_path / "complete.bash"
    script.write_text(bash.stdout)
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    # Completing "cache pr" in a real bash offers "prune".
    probe = subprocess.run(
        ["bash", "-c", f"source {script}; " "COMP_WORDS=(modelmesh-connectors cache pr); COMP_CWORD=2; "
         "COMP_LINE='modelmesh-connectors cache pr'; COMP_POINT=${#COMP_LINE}; "
         "_shtab_modelmesh_connectors modelmesh-connectors pr cache; printf '%s\\n' \"${COMPREPLY[@]}\""],
        capture_output=True, text=True, check=False,
    )
    assert "prune" in probe.stdout.split(), probe.stdout + probe.stderr
    zsh = run("completion", "zsh")
    assert zsh.returncode == 0 and zsh.stdout.startswith("#compdef modelmesh-connectors")
    assert run("completion", "fish").returncode == ExitCode.USAGE


# -- progress ----------------------------------------------------------------------------------------


_BLOB = base64.b64encode(os.urandom(300_000)).decode()  # ~400 KB that compresses poorly


def _big_package(sim: RepositorySimulator, version: str) -> str:
    release = sim.publish("big-sink", version, modules={
        "big_sink/__init__.py": '"""Package."""\n',
        "big_sink/sink.py": OBSERVABILITY_SOURCE,
        "big_sink/blob.txt": _BLOB,
    }, connectors=[("big.sink.v1", "observability", "big_sink.sink:Sink")])
    return release.file


def _imports_probe(args: list[str]) -> list[str]:
    """Run main(args) in a child; print whether our progress display and the progress library
    were imported (httpx imports rich by itself when its CLI extras are installed, so only
    runs that never import httpx can show "no rich at all")."""
    return [sys.executable, "-c",
            "import sys; from modelmesh_connectors.cli import main; status = main(sys.argv[1:]); "
            "print('PROGRESS=' + str('modelmesh_connectors.cli.progress' in sys.modules)); "
            "print('RICH=' + str(any(m.split('.')[0] == 'rich' for m in sys.modules))); "
            "print('HTTPX=' + str('httpx' in sys.modules)); "
            "sys.exit(status)", *args]


def test_progress_on_a_terminal_shows_bytes_total_rate_and_eta(sim: RepositorySimulator, tmp_path: Path) -> None:
    file = _big_package(sim, "1.0.0")
    data = sim.read(file)
    # Half the archive, a pause (the display refreshes meanwhile), a dropped connection; the
    # retry then gets it all.
    sim.server.script("/" + file, Reply.ok(data, stall_at=len(data) // 2, stall=1.5), Reply.ok(data))
    config = write_config(tmp_path / "m.yaml", sim, ["big-sink"], retries=1)
    status, out, terminal = run_on_terminal(_imports_probe(["install", "big-sink", "--config", str(config)]), env())
    assert status == 0, terminal
    assert "PROGRESS=True" in out and "RICH=True" in out  # a terminal and a download
    assert "big-sink 1.0.0" in terminal
    assert re.search(r"\d+(\.\d+)?/\d+(\.\d+)? [kM]B", terminal), terminal  # bytes / total
    assert re.search(r"\d+(\.\d+)? [kM]B/s", terminal), terminal  # rate
    assert "eta" in terminal and re.search(r"\d:\d\d:\d\d", terminal)  # ETA
    assert "100%" in terminal


def test_no_progress_library_without_a_terminal_or_on_a_warm_start(sim: RepositorySimulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "m.yaml", sim, ["acme-audit-log"])
    cold = subprocess.run(_imports_probe(["load", "--config", str(config)]), capture_output=True, text=True, env=env(), check=False)
    assert cold.returncode == 0, cold.stderr
    assert "PROGRESS=False" in cold.stdout  # downloaded, but no terminal: no display
    installed = subprocess.run(_imports_probe(["install", "acme-audit-log", "--config", str(config)]), capture_output=True, text=True, env=env(), check=False)
    assert installed.returncode == 0 and "PROGRESS=False" in installed.stdout
    # On a terminal, a warm start (everything cached and fresh) downloads nothing: neither the
    # display nor the progress library nor httpx is imported.
    status, out, terminal = run_on_terminal(_imports_probe(["load", "--config", str(config)]), env())
    assert status == 0, terminal
    assert "PROGRESS=False" in out and "RICH=False" in out and "HTTPX=False" in out, out


def test_ctrl_c_during_a_download_ends_the_progress_line_cleanly(sim: RepositorySimulator, tmp_path: Path) -> None:
    file = _big_package(sim, "1.0.0")
    data = sim.read(file)
    sim.server.script("/" + file, Reply.ok(data, stall_at=len(data) // 3, stall=30))
    config = write_config(tmp_path / "m.yaml", sim, ["big-sink"])
    status, _out, terminal = run_on_terminal(
        [*CLI, "install", "big-sink", "--config", str(config)], env(), interrupt_when="eta", timeout=60,
    )
    assert status == ExitCode.INTERRUPTED, terminal
    assert "Traceback" not in terminal
    terminal = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal)  # colours, cursor show/hide
    # "interrupted" starts a line of its own: the progress line was ended first.
    assert re.search(r"(^|\n)interrupted\r?\n", terminal), repr(terminal[-500:])
    assert not re.search(r"[^\n]interrupted", terminal), repr(terminal[-500:])


# -- configuration discovery --------------------------------------------------------------------------


def test_config_discovery_order_and_verbose_names_the_file(sim: RepositorySimulator, tmp_path: Path) -> None:
    here = tmp_path / "work"
    here.mkdir()
    local = write_config(here / "modelmesh.yaml", sim, ["acme-audit-log"])
    from_env = write_config(tmp_path / "env.yaml", sim, [])
    explicit = write_config(tmp_path / "explicit.yaml", sim, [])
    # ./modelmesh.yaml when nothing else is given
    done = run("-v", "load", "--json", cwd=here)
    assert done.returncode == 0, done.stderr
    assert "configuration: modelmesh.yaml (from ./modelmesh.yaml in the current directory)" in done.stderr
    assert any(r["id"] == "acme.audit-log.v1" for r in json.loads(done.stdout))
    # $MODELMESH_CONFIG wins over ./modelmesh.yaml
    done = run("load", "--json", "-v", cwd=here, environ=env(MODELMESH_CONFIG=str(from_env)))
    assert f"configuration: {from_env} (from $MODELMESH_CONFIG)" in done.stderr
    assert not any(r["id"] == "acme.audit-log.v1" for r in json.loads(done.stdout))
    # --config wins over both
    done = run("load", "--config", explicit, "-v", cwd=here, environ=env(MODELMESH_CONFIG=str(from_env)))
    assert f"configuration: {explicit} (from --config)" in done.stderr
    # without -v the file is not named
    assert "configuration:" not in run("load", cwd=here).stderr
    # nothing anywhere: a configuration error that says where it looked
    empty = tmp_path / "empty"
    empty.mkdir()
    none = run("load", cwd=empty)
    assert none.returncode == ExitCode.CONFIG
    assert "$MODELMESH_CONFIG" in none.stderr and "./modelmesh.yaml" in none.stderr and "hint:" in none.stderr
    assert local.exists()


# -- --refresh ------------------------------------------------------------------------------------------


def test_refresh_sees_a_version_published_a_moment_ago(sim: RepositorySimulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "m.yaml", sim, [])
    first = run("install", "acme-audit-log", "--config", config)
    assert first.returncode == 0 and "acme-audit-log 1.0.0" in first.stdout
    assert "note:" not in first.stderr  # fetched just now: nothing to say
    sim.publish("acme-audit-log", "1.1.0")
    # Cached metadata is fresh for metadata_max_age: the unpinned install says what it missed.
    stale = run("install", "acme-audit-log", "--config", config)
    assert stale.returncode == 0 and "acme-audit-log 1.0.0" in stale.stdout
    assert "note: 'acme-audit-log' resolved to 1.0.0 from index metadata checked" in stale.stderr
    assert "--refresh" in stale.stderr
    assert "note:" not in run("-q", "install", "acme-audit-log", "--config", config).stderr
    pinned = run("install", "acme-audit-log==1.0.0", "--config", config)
    assert pinned.returncode == 0 and "note:" not in pinned.stderr  # pinned: nothing to miss
    fresh = run("install", "acme-audit-log", "--config", config, "--refresh")
    assert fresh.returncode == 0 and "acme-audit-log 1.1.0" in fresh.stdout, fresh.stderr
    assert "note:" not in fresh.stderr
    assert run("install", "acme-audit-log", "--config", config, "--refresh", "--offline").returncode == ExitCode.CONFIG


# -- help ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["cache", "list"], "--cache-dir"),
        (["cache", "verify"], "--cache-dir"),
        (["cache", "prune"], "--dry-run"),
        (["root", "init"], "--root-threshold"),
        (["root", "sign"], "--key"),
        (["root", "rotate"], "--expires"),
        (["root", "publish"], "staged"),
    ],
)
def test_per_action_help(words: list[str], expected: str) -> None:
    done = run(*words, "-h")
    assert done.returncode == 0
    assert done.stdout.startswith(f"usage: modelmesh-connectors {' '.join(words)} ")
    assert expected in done.stdout


def test_every_option_has_help_and_shows_its_default() -> None:
    problems: list[str] = []
    for path, parser in _leaf_commands(build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            where = f"{' '.join(path)} {action.option_strings[-1]}"
            if not action.help:
                problems.append(f"{where}: no help")
                continue
            text = formatter._get_help_string(action) or ""  # what -h prints
            meaningful = action.default not in (None, False, [], argparse.SUPPRESS) and action.nargs != 0
            if meaningful and "default" not in text:
                problems.append(f"{where}: default {action.default!r} not shown")
    assert problems == []
    assert "(default: 7d)" in run("timestamp", "-h").stdout
    assert "(default: 8000)" in run("serve", "-h").stdout


@pytest.mark.parametrize(
    "words",
    [["install"], ["load"], ["lock"], ["mirror"], ["cache"], ["cache", "prune"], ["inspect"], ["pack"],
     ["keygen"], ["root"], ["root", "init"], ["init"], ["publish"], ["yank"], ["verify"], ["completion"]],
)
def test_main_commands_show_examples(words: list[str]) -> None:
    out = run(*words, "--help").stdout
    assert "examples:" in out and f"modelmesh-connectors {words[0]}" in out.split("examples:")[1]


def test_readme_and_help_quote_requirements() -> None:
    unquoted = re.compile(r"install [a-z0-9-]+[<>=]")
    assert not unquoted.search((ROOT / "README.md").read_text())
    assert not unquoted.search(run("install", "-h").stdout)
