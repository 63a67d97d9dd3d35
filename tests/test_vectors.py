"""The conformance vectors (``tests/vectors/``) run through the Python client.

The TypeScript client runs the same files (``src/typescript/test/vectors.test.ts``); the format
is in ``src/typescript/VECTORS.md``. Index sequences are served step by step by a real HTTP
server on 127.0.0.1 and loaded with the clock injected (``Loader(now=...)``); outcomes are
compared by error code, never by message. ``scripts/make_vectors.py`` writes the files: the
last test proves a second run reproduces them byte for byte.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from modelmesh_connectors._internal.redact import redact_text, redact_url
from modelmesh_connectors.client.binding import url_file_name
from modelmesh_connectors.client.config import LoaderConfig, NetworkConfig
from modelmesh_connectors.client.loader import Loader
from modelmesh_connectors.client.resolve import Candidate, choose
from modelmesh_connectors.errors import ConnectorError
from modelmesh_connectors.index.envelope import parse_envelope, strict_json, verify_threshold
from modelmesh_connectors.index.keys import PublicKey
from modelmesh_connectors.index.metadata import parse_time
from modelmesh_connectors.package.archive import read_zip
from modelmesh_connectors.package.ids import parse_connector_id
from modelmesh_connectors.package.manifest import parse_manifest
from modelmesh_connectors.package.requirements import (
    InvalidPackageSpec,
    RequirementSpec,
    parse_package_spec,
)
from tests.support.http_server import LoopbackServer, Reply

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "tests" / "vectors"
FORMAT = "modelmesh-conformance/1"
RUNTIME = "python"
READ_TIMEOUT = 1.0  # seconds: a stalled server fails fast


def vbytes(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if "b64" in value:
        return base64.b64decode(value["b64"], validate=True)
    if "hex" in value:
        return bytes.fromhex(value["hex"])
    return str(value["utf8"]).encode("utf-8")


def outcome(run: Callable[[], Mapping[str, Any]]) -> dict[str, Any]:
    try:
        return {"ok": True, **run()}
    except ConnectorError as exc:
        return {"error": exc.code}


def _same(a: Any, b: Any) -> bool:
    # json.dumps tells true from 1 (Python's == does not).
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def compare(got: Mapping[str, Any], expect: Mapping[str, Any], where: str) -> None:
    """A code matches itself and every code below it (``package.archive`` ⊇ ``….name``)."""
    if "error" in expect:
        code = got.get("error")
        wanted = expect["error"]
        assert isinstance(code, str) and (code == wanted or code.startswith(wanted + ".")), (
            f"{where}: expected error {wanted}, got {got}"
        )
        return
    assert got.get("ok") is True, f"{where}: expected success, got {got}"
    for name, value in expect.items():
        assert _same(got.get(name), value), (
            f"{where}: {name}: expected {value!r}, got {got.get(name)!r}"
        )


# -- pure suites -----------------------------------------------------------------------------


def _strict_json(data: Any) -> Mapping[str, Any]:
    return {"value": strict_json(vbytes(data))}


def _envelope(i: Mapping[str, Any]) -> Mapping[str, Any]:
    env = parse_envelope(vbytes(i["envelope"]))
    keys = {kid: PublicKey.from_hex(hex_) for kid, hex_ in i["keys"].items()}
    valid = verify_threshold(
        env,
        expected_type=i["expected_type"],
        keys=keys,
        keyids=i["keyids"],
        threshold=i["threshold"],
        what="vector",
    )
    return {"valid_keyids": sorted(valid)}


def _public_key(text: Any) -> Mapping[str, Any]:
    return {"keyid": PublicKey.from_hex(text).keyid}


def _pep440(i: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = parse_package_spec(i["requirement"])
    if not isinstance(spec, RequirementSpec):
        raise InvalidPackageSpec(f"{i['requirement']!r} is not a requirement")
    candidates = [
        Candidate(c["version"], c.get("yanked", False), c.get("yanked_reason"))
        for c in i["candidates"]
    ]
    choice = choose(spec, candidates, prereleases=i.get("prereleases", False))
    return {"version": choice.candidate.version, "warning": choice.warning is not None}


def _manifest(data: Any) -> Mapping[str, Any]:
    m = parse_manifest(vbytes(data), source="vector")
    return {
        "name": m.name,
        "version": m.version,
        "connectors": [c.id for c in m.connectors],
        "runtimes": list(m.runtimes),
    }


def _connector_id(value: Any) -> Mapping[str, Any]:
    return {"id": str(parse_connector_id(value))}


def _url_file_name(url: Any) -> Mapping[str, Any]:
    return {"name": url_file_name(url)}


def _redact_url(value: Any) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return {"text": redact_text(value["text"])}
    return {"url": redact_url(value)}


def _zip(data: Any) -> Mapping[str, Any]:
    import hashlib

    files = read_zip(vbytes(data), source="vector.zip")
    return {"files": {name: hashlib.sha256(files[name]).hexdigest() for name in files}}


PURE: dict[str, Callable[[Any], Mapping[str, Any]]] = {
    "strict-json": _strict_json,
    "envelope": _envelope,
    "public-key": _public_key,
    "pep440": _pep440,
    "manifest": _manifest,
    "connector-id": _connector_id,
    "url-file-name": _url_file_name,
    "redact-url": _redact_url,
    "zip": _zip,
}


# -- index sequences -------------------------------------------------------------------------


def _reply(server: LoopbackServer, how: Mapping[str, Any]) -> Reply:
    kind = how["kind"]
    if kind == "endless":
        return Reply(endless=True, framing="chunked")
    if kind == "stall":
        return Reply(body=b"{}", stall_at=0, stall=10 * READ_TIMEOUT)
    if kind == "status":
        return Reply.error(int(how["status"]))
    if kind == "redirect":
        return Reply.redirect(how.get("url") or server.url("/" + how["to"]))
    raise AssertionError(f"unknown misbehaviour {kind!r}")


def _run_step(server: LoopbackServer, tmp: Path, step: Mapping[str, Any]) -> dict[str, Any]:
    action = step["action"]
    config = LoaderConfig(
        index=(server.base_url + "/",),
        trust_root=tmp / "keys" / "root.json",
        cache_dir=tmp / "cache",
        metadata_max_age=0.0,  # every step asks the server: 'now' grows from step to step
        prereleases=bool(action.get("prereleases", False)),
        network=NetworkConfig(
            retries=0,
            read_timeout=READ_TIMEOUT,
            connect_timeout=2.0,
            transfer_timeout=5.0,
            netrc=False,
        ),
        base_dir=tmp,
    )
    loader = Loader(config, now=parse_time(step["now"]))

    def run() -> Mapping[str, Any]:
        if action["op"] == "refresh":
            state = loader.view().state()
            assert state.timestamp is not None and state.index is not None
            return {
                "root_version": state.root.version,
                "timestamp_version": state.timestamp.version,
                "index_version": state.index.version,
            }
        assert action["op"] == "resolve", action
        [(package, _)] = loader.load([parse_package_spec(action["requirement"])])
        return {
            "name": package.manifest.name,
            "version": package.manifest.version,
            "sha256": package.sha256,
        }

    try:
        return outcome(run)
    finally:
        loader.close()


def run_sequence(case: Mapping[str, Any], tmp: Path, where: str) -> None:
    (tmp / "keys").mkdir(parents=True)
    (tmp / "keys" / "root.json").write_bytes(vbytes(case["trust_root"]))
    served: dict[str, bytes] = {}
    with LoopbackServer() as server:
        for i, step in enumerate(case["steps"]):
            for path, data in step["serve"].items():
                if data is None:
                    served.pop(path, None)
                else:
                    served[path] = vbytes(data)
            server.clear_content()
            for path, data in served.items():
                server.add_file("/" + path, data)
            for path, how in step.get("misbehave", {}).items():
                server.script("/" + path, _reply(server, how))
            expect = step.get("expect_by_runtime", {}).get(RUNTIME, step["expect"])
            compare(_run_step(server, tmp, step), expect, f"{where} step {i}")


# -- collection ------------------------------------------------------------------------------


def _files() -> list[Path]:
    return sorted(VECTORS.glob("**/*.json"))


def _cases() -> Iterator[Any]:
    for path in _files():
        body = json.loads(path.read_text("utf-8"))
        for case in body["cases"]:
            yield pytest.param(body["suite"], case, id=f"{path.stem}:{case['name']}")


def test_vector_files_are_well_formed() -> None:
    files = _files()
    assert len(files) >= 15
    for path in files:
        body = json.loads(path.read_text("utf-8"))
        assert body["format"] == FORMAT, path
        assert body["suite"] == "index-sequence" or body["suite"] in PURE, path
        names = [c["name"] for c in body["cases"]]
        assert len(names) == len(set(names)), path


@pytest.mark.parametrize(("suite", "case"), list(_cases()))
def test_vector(suite: str, case: Mapping[str, Any], tmp_path: Path) -> None:
    where = f"[{suite}] {case['name']}"
    if suite == "index-sequence":
        run_sequence(case, tmp_path, where)
        return
    compare(outcome(lambda: PURE[suite](case["input"])), case["expect"], where)


def test_a_wrong_expectation_fails() -> None:
    with pytest.raises(AssertionError, match="expected error trust.rollback"):
        compare({"error": "input.json"}, {"error": "trust.rollback"}, "x")
    with pytest.raises(AssertionError):
        compare({"error": "package.archive"}, {"error": "package.archive.name"}, "x")
    compare({"error": "package.archive.name"}, {"error": "package.archive"}, "x")
    with pytest.raises(AssertionError):
        compare({"ok": True, "value": [1]}, {"ok": True, "value": [True]}, "x")


def test_the_generator_reproduces_the_committed_files() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_vectors", ROOT / "scripts" / "make_vectors.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    try:
        spec.loader.exec_module(module)
        generated = module.generate()
    finally:
        del sys.modules[spec.name]
    committed = {p.name: p.read_bytes() for p in VECTORS.glob("*.json")}
    assert sorted(generated) == sorted(committed)
    for name, data in generated.items():
        assert data == committed[name], f"tests/vectors/{name} differs from a fresh generation"
