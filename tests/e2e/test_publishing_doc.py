"""docs/PUBLISHING.md's CI recipe, run as written, and the console-script submit/ingest flow.

The recipe's shell blocks are run by bash (``set -euo pipefail``: any failing command fails
the test) with the variables a secret store would set: the root and index keys in a real
SoftHSM token, the timestamp key and the team's key in a real OpenBao transit engine. Then
two publishers submit *concurrently* from two processes, one ingest run publishes both in
one index update, and the publisher CI's read-back exits as documented.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelmesh_connectors.publish import repository
from tests.support.keystores import OpenBao, SoftHsm, find_private_key_files
from tests.support.packages import make_package, make_zip

DOC = Path(__file__).parents[2] / "docs" / "PUBLISHING.md"
CLI = Path(sys.executable).with_name("modelmesh-connectors")


def recipe_blocks() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## The CI recipe", 1)[1]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def test_the_recipe_names_every_step() -> None:
    script = "\n".join(recipe_blocks())
    commands = set(re.findall(r"^modelmesh-connectors (\w+(?: sign| init)?)", script, flags=re.M))
    commands |= set(re.findall(r"\$\(modelmesh-connectors (\w+)", script))
    assert commands >= {"pubkey", "root init", "root sign", "init", "pack", "submit", "ingest",
                        "timestamp", "submission", "verify"}, commands


@pytest.fixture
def env(softhsm: SoftHsm, openbao: OpenBao, tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MODELMESH_", "VAULT_"))}
    (tmp_path / "home").mkdir()
    return {**base, **softhsm.env, **openbao.env, "HOME": str(tmp_path / "home"),
            "PATH": f"{CLI.parent}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.mark.slow  # the CI recipe as written, with SoftHSM and OpenBao; scripts/test.sh runs it
def test_the_ci_recipe_runs_as_written(softhsm: SoftHsm, openbao: OpenBao, env: dict[str, str], tmp_path: Path) -> None:
    tag = os.urandom(4).hex()
    softhsm.generate(f"root-{tag}")
    softhsm.generate(f"index-{tag}")
    openbao.create_key(f"timestamp-{tag}")
    openbao.create_key(f"team-a-{tag}")
    work = tmp_path / "ci"
    work.mkdir()
    shutil.move(make_package(tmp_path / "src", "acme-audit-log", "1.0.0"), work / "connector")
    variables = {
        "ROOT_KEY": softhsm.reference(f"root-{tag}"),
        "INDEX_KEY": softhsm.reference(f"index-{tag}"),
        "TIMESTAMP_KEY": f"vault:transit/timestamp-{tag}",
        "TEAM_KEY": f"vault:team-a-{tag}",
        "INDEX": str(tmp_path / "index"),
        "INBOX": str(tmp_path / "inbox"),
    }
    script = "set -euo pipefail\n" + "\n".join(recipe_blocks())
    r = subprocess.run(["bash", "-c", script], cwd=work, env={**env, **variables},
                       capture_output=True, text=True, timeout=300, check=False, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "1 published, 0 rejected" in r.stdout
    assert '"status": "published"' in r.stdout
    assert "verified:" in r.stdout
    state = repository.load_state(tmp_path / "index")
    assert state.timestamp.version == 3  # init, ingest, timestamp
    assert find_private_key_files(tmp_path, softhsm.base, openbao.base) == []


@pytest.mark.slow  # publishers submitting concurrently, in real processes; scripts/test.sh runs it
def test_concurrent_submissions_one_ingest_and_the_read_back(
    softhsm: SoftHsm, openbao: OpenBao, env: dict[str, str], tmp_path: Path
) -> None:
    tag = os.urandom(4).hex()
    root_ref, index_ref = softhsm.reference(f"root-{tag}"), softhsm.reference(f"index-{tag}")
    softhsm.generate(f"root-{tag}")
    softhsm.generate(f"index-{tag}")
    softhsm.generate(f"team-b-{tag}")
    openbao.create_key(f"ts-{tag}")
    openbao.create_key(f"team-a-{tag}")
    team_a, team_b = f"vault:team-a-{tag}", softhsm.reference(f"team-b-{tag}")
    ts = f"vault:ts-{tag}"
    index, inbox, root = tmp_path / "index", tmp_path / "inbox", tmp_path / "root.json"

    def cli(*args: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(CLI), *map(str, args)], env=env, capture_output=True, text=True,
                              timeout=120, check=False, stdin=subprocess.DEVNULL)

    for args in (
        ("root", "init", "--root-key", root_ref, "--index-key", index_ref, "--timestamp-key", ts,
         "--publisher", f"team-a:acme:{team_a}", "--publisher", f"team-b:globex:{team_b}", "-o", root),
        ("root", "sign", root, "--key", root_ref),
        ("init", "--index", index, "--root", root, "--index-key", index_ref, "--timestamp-key", ts),
    ):
        r = cli(*args)
        assert r.returncode == 0, r.stderr
    a = make_zip(tmp_path / "a", "acme-audit-log", "1.0.0")
    b = make_zip(tmp_path / "b", "globex-probe", "2.0.0", connectors=[("globex.probe.v1", "observability", "globex_probe.sink:Sink")])
    squat = make_zip(tmp_path / "c", "acme-takeover", "1.0.0", connectors=[("globex.takeover.v1", "observability", "acme_takeover.sink:Sink")])
    # Two teams' CI jobs at the same moment, each with only its own key (team A's in OpenBao,
    # team B's in SoftHSM), then team B's second job. Two processes on one SoftHSM *file*
    # token at once fail now and then with CKR_GENERAL_ERROR (SoftHSM's file store re-reads
    # object files another process is rewriting): a limit of the test token, not of the inbox,
    # which takes concurrent submissions from any number of processes.
    def submit(archive: Path, pub: str, key: str) -> subprocess.Popen[str]:
        return subprocess.Popen([str(CLI), "submit", archive, "--inbox", inbox, "--publisher", pub,
                                 "--release-key", key, "--json"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)

    jobs = [submit(a, "team-a", team_a), submit(b, "team-b", team_b)]
    outs = [job.communicate(timeout=120) for job in jobs]
    jobs.append(submit(squat, "team-b", team_b))
    outs.append(jobs[-1].communicate(timeout=120))
    assert [job.returncode for job in jobs] == [0, 0, 0], outs
    ids = [json.loads(out)["id"] for out, _ in outs]
    r = cli("submission", ids[0], "--inbox", inbox, "--publisher", "team-a")
    assert r.returncode == 3 and json.loads(r.stdout)["status"] == "pending"
    top = repository.load_state(index).top.version
    r = cli("ingest", "--index", index, "--inbox", inbox, "--index-key", index_ref, "--timestamp-key", ts, "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert sorted(x["id"] for x in report["published"]) == sorted(ids[:2])
    assert [(x["id"], x["reason"]) for x in report["rejected"]] == [(ids[2], "package-name")]
    assert repository.load_state(index).top.version == top + 1
    assert cli("submission", ids[0], "--inbox", inbox, "--publisher", "team-a").returncode == 0
    assert cli("submission", ids[1], "--inbox", inbox, "--publisher", "team-b").returncode == 0
    r = cli("submission", ids[2], "--inbox", inbox, "--publisher", "team-b")
    assert r.returncode == 1 and json.loads(r.stdout)["reason"] == "package-name"
    assert "belongs to publisher 'team-a'" in json.loads(r.stdout)["message"]
    assert find_private_key_files(tmp_path, softhsm.base, openbao.base) == []
