"""The first-party demo connector packages under ``index/sources/`` really work in ModelMesh.

Each package's code is imported with ``importlib`` from its source directory (put on
``sys.path`` for one test, then removed with everything it imported), independent of
the project's own loader. The last tests run a real ``modelmesh.ModelMesh`` on them.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import json
import re
import sys
import threading
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelmesh import MeshClient, MeshConfig, ModelMesh
from modelmesh.interfaces.observability import (
    AggregateStats,
    EventType,
    ObservabilityConnector,
    RequestLogEntry,
    RoutingEvent,
    Severity,
    TraceEntry,
)
from modelmesh.interfaces.provider import (
    CompletionRequest,
    CompletionResponse,
    ProviderConnector,
)
from modelmesh.interfaces.rotation import (
    DeactivationPolicy,
    DeactivationReason,
    ModelState,
    ModelStatus,
    RecoveryPolicy,
    SelectionStrategy,
)
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from modelmesh_connectors.package.package import open_local_package

SOURCES = Path(__file__).resolve().parents[2] / "index" / "sources"

ECHO = "modelmesh-echo-provider-1.0.0"
AUDIT_1_0 = "acme-audit-log-1.0.0"
AUDIT_1_1 = "acme-audit-log-1.1.0"
ROTATION = "demo-weighted-rotation-1.0.0"
CANARY = "demo-canary-1.0.0"

# Directory → the connectors its manifest must declare: (id, type, entry).
EXPECTED: dict[str, list[tuple[str, str, str]]] = {
    ECHO: [("demo.echo.v1", "provider", "modelmesh_echo_provider.provider:EchoProvider")],
    AUDIT_1_0: [("acme.audit-log.v1", "observability", "acme_audit_log.sink:AuditLog")],
    AUDIT_1_1: [("acme.audit-log.v1", "observability", "acme_audit_log.sink:AuditLog")],
    ROTATION: [
        (
            "demo.weighted-rotation.v1",
            "rotation",
            "demo_weighted_rotation.policy:WeightedRotationPolicy",
        )
    ],
    CANARY: [("demo.canary.v1", "observability", "demo_canary.canary:Canary")],
}

# The JavaScript packages (Node entry only; the TypeScript suite imports them): directory →
# (id, type, node module, export).
NODE_EXPECTED: dict[str, list[tuple[str, str, str, str]]] = {
    "demo-js-event-log-1.0.0": [
        ("demo.js-event-log.v1", "observability", "lib/event-log.mjs", "EventLog")
    ],
    "demo-js-canary-1.0.0": [("demo.js-canary.v1", "observability", "lib/canary.mjs", "Canary")],
}

CHAT = "generation.text-generation.chat-completion"
NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
CONNECTOR_ID = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*\.[a-z0-9]+(-[a-z0-9]+)*\.v[1-9][0-9]*")
CONNECTOR_TYPES = {"provider", "rotation", "secret_store", "storage", "observability", "discovery"}
MANIFEST_KEYS = {
    "name",
    "version",
    "description",
    "requires-modelmesh",
    "dependencies",
    "connectors",
}
REQUIRED_MANIFEST_KEYS = {"name", "version", "description", "connectors"}
CONNECTOR_KEYS = {"id", "type", "entry", "description"}


# -- Importing package code --------------------------------------------------------


def _top_level_packages(source: Path) -> set[str]:
    return {p.parent.name for p in source.glob("*/__init__.py")}


def _purge_modules(prefixes: set[str]) -> None:
    for name in list(sys.modules):
        if name.split(".", 1)[0] in prefixes:
            del sys.modules[name]


Loader = Callable[[str, str], types.ModuleType]


@pytest.fixture(autouse=True)
def _no_bytecode_in_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep ``__pycache__`` out of ``index/sources/``: those directories become archives."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)


@pytest.fixture
def load() -> Iterator[Loader]:
    """Import ``module`` of the package in ``index/sources/<directory>``; undo it afterwards.

    The source directory is on ``sys.path`` only for the test; every module imported
    from it is dropped from ``sys.modules`` at teardown, so two versions of one
    package (``acme_audit_log`` 1.0.0 and 1.1.0) never meet.
    """
    added: list[str] = []
    packages: dict[str, str] = {}

    def _load(directory: str, module: str) -> types.ModuleType:
        source = SOURCES / directory
        for package in _top_level_packages(source):
            if packages.setdefault(package, directory) != directory:
                raise RuntimeError(f"{package!r} already loaded from {packages[package]}")
        if str(source) not in added:
            sys.path.insert(0, str(source))
            added.append(str(source))
            importlib.invalidate_caches()
        return importlib.import_module(module)

    yield _load
    for entry in added:
        sys.path.remove(entry)
    _purge_modules(set(packages))
    importlib.invalidate_caches()


def _import_private(directory: str, module: str) -> types.ModuleType:
    """Import like the project's loader: under a private namespace, nothing on sys.path."""
    namespace = "_mmpkg_test_" + re.sub(r"[^a-z0-9]", "_", directory)
    holder = types.ModuleType(namespace)
    holder.__path__ = [str(SOURCES / directory)]
    sys.modules[namespace] = holder
    return importlib.import_module(f"{namespace}.{module}")


def _entry_class(load: Loader, directory: str, entry: str) -> type[Any]:
    module_name, _, class_name = entry.partition(":")
    cls = getattr(load(directory, module_name), class_name)
    assert inspect.isclass(cls)
    return cls


def _manifest(directory: str) -> dict[str, Any]:
    data = yaml.safe_load((SOURCES / directory / "modelmesh-package.yaml").read_text("utf-8"))
    assert isinstance(data, dict)
    return data


# -- Manifests and package layout ----------------------------------------------------


def test_sources_hold_exactly_the_demo_packages() -> None:
    assert sorted(p.name for p in SOURCES.iterdir() if p.is_dir()) == sorted(
        [*EXPECTED, *NODE_EXPECTED]
    )


@pytest.mark.parametrize("directory", sorted(NODE_EXPECTED))
def test_javascript_packages_read_as_node_only(directory: str) -> None:
    package = open_local_package(SOURCES / directory)
    declared = [
        (c.id, c.type.value, c.node.module, c.node.export)
        for c in package.manifest.connectors
        if c.node is not None
    ]
    assert declared == NODE_EXPECTED[directory]
    assert package.manifest.runtimes == ("node",)
    assert (SOURCES / directory / "README.md").read_text("utf-8").strip()


@pytest.mark.parametrize("directory", sorted(EXPECTED))
def test_manifest_is_well_formed(directory: str) -> None:
    manifest = _manifest(directory)
    assert set(manifest) <= MANIFEST_KEYS
    assert set(manifest) >= REQUIRED_MANIFEST_KEYS
    assert NAME.fullmatch(manifest["name"])
    assert isinstance(manifest["version"], str)
    assert str(Version(manifest["version"])) == manifest["version"]
    assert directory == f"{manifest['name']}-{manifest['version']}"
    assert isinstance(manifest["description"], str)
    assert manifest["description"].strip()
    assert installed_version("modelmesh-lite") in SpecifierSet(manifest["requires-modelmesh"])
    for requirement in manifest.get("dependencies", []):
        Requirement(requirement)
    declared = []
    for connector in manifest["connectors"]:
        assert set(connector) == CONNECTOR_KEYS
        assert CONNECTOR_ID.fullmatch(connector["id"])
        assert connector["type"] in CONNECTOR_TYPES
        assert re.fullmatch(
            r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*:[A-Za-z_]\w*", connector["entry"]
        )
        declared.append((connector["id"], connector["type"], connector["entry"]))
    assert declared == EXPECTED[directory]
    assert (SOURCES / directory / "README.md").read_text("utf-8").strip()


@pytest.mark.parametrize("directory", sorted(EXPECTED))
def test_entry_points_exist_fit_their_type_and_instantiate(
    directory: str, load: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELMESH_CANARY_PATH", raising=False)
    for connector_id, connector_type, entry in EXPECTED[directory]:
        cls = _entry_class(load, directory, entry)
        assert connector_id == cls.CONNECTOR_ID
        assert not inspect.isabstract(cls)
        config = next(iter(inspect.signature(cls).parameters.values()))
        assert config.name == "config"
        assert config.default is None
        assert config.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        instance = cls()  # ModelMesh builds observability connectors with no argument
        assert type(cls(None)) is cls
        if connector_type == "provider":
            assert isinstance(instance, ProviderConnector)
        elif connector_type == "observability":
            assert isinstance(instance, ObservabilityConnector)
        else:
            assert connector_type == "rotation"
            assert isinstance(instance.deactivation, DeactivationPolicy)
            assert isinstance(instance.recovery, RecoveryPolicy)
            assert isinstance(instance.selection, SelectionStrategy)


def _absolute_imports(source: Path) -> Iterator[tuple[str, str]]:
    for path in sorted(source.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield path.name, alias.name
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                yield path.name, node.module or ""


@pytest.mark.parametrize("directory", sorted(EXPECTED))
def test_code_imports_only_itself_relatively_the_stdlib_and_modelmesh(directory: str) -> None:
    imports = list(_absolute_imports(SOURCES / directory))
    assert imports, "the scan found no imports at all"
    allowed = sys.stdlib_module_names | {"modelmesh"}
    foreign = [(file, module) for file, module in imports if module.split(".")[0] not in allowed]
    assert foreign == []


@pytest.mark.parametrize("directory", sorted(EXPECTED))
def test_entry_imports_under_a_private_namespace(
    directory: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELMESH_CANARY_PATH", raising=False)
    packages = _top_level_packages(SOURCES / directory)
    namespace = "_mmpkg_test_" + re.sub(r"[^a-z0-9]", "_", directory)
    try:
        for connector_id, _, entry in EXPECTED[directory]:
            module_name, _, class_name = entry.partition(":")
            module = _import_private(directory, module_name)
            assert module.__name__ == f"{namespace}.{module_name}"
            assert connector_id == getattr(module, class_name).CONNECTOR_ID
        # Nothing was imported under its public name: relative imports only.
        assert not [name for name in sys.modules if name.split(".", 1)[0] in packages]
    finally:
        _purge_modules({namespace})


# -- Echo provider -------------------------------------------------------------------


@pytest.fixture
def echo(load: Loader) -> types.ModuleType:
    return load(ECHO, "modelmesh_echo_provider")


def _request(text: str, model: str = "echo-1", **kwargs: Any) -> CompletionRequest:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
    return CompletionRequest(model=model, messages=messages, **kwargs)


def test_echo_answers_with_prefix_and_counts_tokens(echo: types.ModuleType) -> None:
    provider = echo.EchoProvider()
    response = asyncio.run(provider.complete(_request("Hello, world")))
    assert response.model == "echo-1"
    assert response.object == "chat.completion"
    assert response.id
    [choice] = response.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == "echo: Hello, world"
    assert choice.finish_reason == "stop"
    # prompt: 3 priming + (3 + "Be brief." 3) + (3 + "Hello, world" 3); answer: 5 tokens
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (15, 5)
    assert response.usage.total_tokens == 20
    assert provider.check_quota().used == 20
    assert provider.usage_by_model["echo-1"].total_tokens == 20


def test_echo_canned_answers_match_exact_prompts_only(echo: types.ModuleType) -> None:
    provider = echo.EchoProvider({"prefix": "> ", "answers": {"ping": "pong"}})
    assert asyncio.run(provider.complete(_request("ping"))).choices[0].message.content == "pong"
    assert asyncio.run(provider.complete(_request("ping "))).choices[0].message.content == "> ping "
    parts = [
        {"type": "text", "text": "pi"},
        {"type": "image_url", "image_url": {}},
        {"type": "text", "text": "ng"},
    ]
    request = CompletionRequest(model="echo-1", messages=[{"role": "user", "content": parts}])
    assert asyncio.run(provider.complete(request)).choices[0].message.content == "pong"


def test_echo_accepts_dotted_ids_and_rejects_unknown_models(echo: types.ModuleType) -> None:
    provider = echo.EchoProvider()
    response = asyncio.run(provider.complete(_request("hi", model="echo.echo-1-mini")))
    assert response.model == "echo-1-mini"
    with pytest.raises(echo.UnknownModelError, match="no model 'gpt-4o'") as raised:
        asyncio.run(provider.complete(_request("hi", model="gpt-4o")))
    assert isinstance(raised.value, KeyError)
    verdict = provider.classify_error(raised.value)
    assert (verdict.category, verdict.error_code, verdict.retryable) == ("client", 404, False)
    with pytest.raises(KeyError):
        provider.get_pricing("nope")


def test_echo_honours_max_tokens_and_stop(echo: types.ModuleType) -> None:
    provider = echo.EchoProvider({"prefix": ""})
    cut = asyncio.run(provider.complete(_request("one two three four", max_tokens=2)))
    assert cut.choices[0].message.content == "one two"
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage.completion_tokens == 2
    stopped = asyncio.run(provider.complete(_request("alpha. beta", stop=["."])))
    assert stopped.choices[0].message.content == "alpha"
    assert stopped.choices[0].finish_reason == "stop"


def test_echo_stream_reassembles_to_the_complete_answer(echo: types.ModuleType) -> None:
    provider = echo.EchoProvider()
    request = _request("  streaming  works, word by word ")

    async def collect() -> list[Any]:
        return [chunk async for chunk in provider.stream(request)]

    chunks = asyncio.run(collect())
    full = asyncio.run(provider.complete(request))
    assert len(chunks) > 3
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == full.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].usage == full.usage
    assert all(c.choices[0].message is None for c in chunks)


def test_echo_catalogue_capabilities_and_zero_pricing(echo: types.ModuleType) -> None:
    provider = echo.EchoProvider()
    models = provider.list_models()
    assert [m.id for m in models] == ["echo-1", "echo-1-mini"]
    assert all(m.capabilities == [CHAT] for m in models)
    assert all(m.delivery["streaming"] for m in models)
    models[0].capabilities.append("mutated")
    assert provider.get_model_info("echo.echo-1").capabilities == [CHAT]
    assert provider.get_capabilities() == [CHAT]
    assert provider.supports(CHAT)
    assert provider.supports("generation.text-generation")
    assert provider.supports("generation")
    assert not provider.supports("generation.text")
    assert not provider.supports("representation.embeddings.text-embeddings")
    pricing = provider.get_pricing("echo-1")
    assert (pricing.input_per_1k_tokens, pricing.output_per_1k_tokens, pricing.per_request) == (
        0.0,
        0.0,
        0.0,
    )
    assert provider.get_rate_limits().requests_remaining is None
    assert provider.check_quota().limit is None


def test_echo_quota_runs_out_and_is_classified(echo: types.ModuleType) -> None:
    provider = echo.EchoProvider({"quota_tokens": 30})
    asyncio.run(provider.complete(_request("Hello, world")))  # 20 tokens
    assert provider.check_quota().remaining == 10
    assert provider.get_rate_limits().tokens_remaining == 10
    asyncio.run(provider.complete(_request("Hello, world")))  # under budget when asked
    assert provider.check_quota().remaining == 0
    with pytest.raises(echo.QuotaExceededError, match="used 40 of 30"):
        asyncio.run(provider.complete(_request("Hello, world")))
    verdict = provider.classify_error(echo.QuotaExceededError("x"))
    assert (verdict.category, verdict.error_code, verdict.retryable) == ("rate_limit", 429, False)


@dataclass
class _HTTPError(Exception):
    status_code: int


@pytest.mark.parametrize(
    ("error", "category", "retryable"),
    [
        (_HTTPError(429), "rate_limit", True),
        (_HTTPError(503), "server", True),
        (_HTTPError(401), "auth", False),
        (_HTTPError(400), "client", False),
        (TimeoutError("slow"), "network", True),
        (ConnectionResetError("reset"), "network", True),
        (ValueError("odd"), "unknown", False),
    ],
)
def test_echo_classifies_foreign_errors(
    echo: types.ModuleType, error: Exception, category: str, retryable: bool
) -> None:
    provider = echo.EchoProvider()
    verdict = provider.classify_error(error)
    assert (verdict.category, verdict.retryable) == (category, retryable)
    assert provider.is_retryable(error) is retryable


@pytest.mark.parametrize(
    "config",
    [
        {"prefx": ">"},
        {"prefix": 3},
        {"answers": {"a": 1}},
        {"answers": ["a"]},
        {"quota_tokens": -1},
        {"quota_tokens": True},
        {"quota_tokens": "10"},
    ],
)
def test_echo_rejects_bad_config(echo: types.ModuleType, config: dict[str, Any]) -> None:
    with pytest.raises(echo.InvalidEchoConfig) as raised:
        echo.EchoProvider(config)
    assert isinstance(raised.value, ValueError)


# -- Audit log (both versions) ----------------------------------------------------------


@pytest.fixture(params=[AUDIT_1_0, AUDIT_1_1])
def audit(request: pytest.FixtureRequest, load: Loader) -> types.ModuleType:
    return load(request.param, "acme_audit_log.sink")


def _read_lines(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text("utf-8").splitlines()
    return [json.loads(line) for line in lines]


_WHEN = datetime(2026, 1, 2, 3, 4, 5)


def _feed(sink: ObservabilityConnector) -> None:
    sink.emit(
        RoutingEvent(
            EventType.MODEL_ROTATED,
            _WHEN,
            model_id="echo.echo-1",
            pool_id="chat",
            metadata={"reason": "failures"},
        )
    )
    sink.log(
        RequestLogEntry(
            _WHEN, "echo.echo-1", "demo.echo.v1", CHAT, "synchronous", 12.5, 200, 15, 5, cost=0.0
        )
    )
    sink.flush({"pool:chat": AggregateStats(3, 2, 1, 45, 15, 0.0, 10.0, 20.0, 0.0, 1)})
    sink.trace(
        TraceEntry(
            Severity.WARNING,
            _WHEN,
            "router",
            "failure on echo.echo-1",
            metadata={"attempt": 1},
            error="boom",
        )
    )


def test_audit_log_writes_one_json_line_per_call(audit: types.ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "nested" / "audit.jsonl"
    sink = audit.AuditLog({"path": str(path)})
    assert not path.parent.exists()  # opened lazily
    try:
        _feed(sink)
    finally:
        sink.close()
    records = _read_lines(path)
    assert [r["kind"] for r in records] == ["event", "request", "stats", "trace"]
    for record in records:
        datetime.fromisoformat(record["at"])
    event, request, stats, trace = (r["data"] for r in records)
    assert event == {
        "event_type": "model_rotated",
        "timestamp": _WHEN.isoformat(),
        "model_id": "echo.echo-1",
        "provider_id": None,
        "pool_id": "chat",
        "metadata": {"reason": "failures"},
    }
    assert request["capability"] == CHAT
    assert (request["latency_ms"], request["tokens_in"], request["error"]) == (12.5, 15, None)
    assert stats["pool:chat"]["requests_failed"] == 1
    assert trace["severity"] == "warning"
    assert trace["error"] == "boom"
    assert trace["metadata"] == {"attempt": 1}


def test_audit_log_appends_and_reopens_after_close(audit: types.ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text('{"earlier": true}\n', "utf-8")
    with audit.AuditLog({"path": str(path)}) as sink:
        _feed(sink)
        sink.close()
        _feed(sink)
    records = _read_lines(path)
    assert records[0] == {"earlier": True}
    assert len(records) == 9


def test_audit_log_path_comes_from_config_then_env_then_cwd(
    audit: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ACME_AUDIT_LOG_PATH", str(tmp_path / "env.jsonl"))
    assert audit.AuditLog({"path": str(tmp_path / "cfg.jsonl")}).path == tmp_path / "cfg.jsonl"
    assert audit.AuditLog().path == tmp_path / "env.jsonl"
    monkeypatch.delenv("ACME_AUDIT_LOG_PATH")
    with audit.AuditLog() as sink:
        assert sink.path == Path("modelmesh-audit.jsonl")
        sink.trace(TraceEntry(Severity.INFO, _WHEN, "mesh", "hello"))
    assert _read_lines(tmp_path / "modelmesh-audit.jsonl")[0]["data"]["message"] == "hello"


def test_audit_log_keeps_lines_whole_across_threads(
    audit: types.ModuleType, tmp_path: Path
) -> None:
    path = tmp_path / "audit.jsonl"
    writers, per_writer = 8, 100
    start = threading.Barrier(writers)

    def write(n: int) -> None:
        start.wait()
        for i in range(per_writer):
            sink.trace(TraceEntry(Severity.DEBUG, _WHEN, f"writer-{n}", "x" * 500 + str(i)))

    with audit.AuditLog({"path": str(path)}) as sink:
        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    records = _read_lines(path)
    assert len(records) == writers * per_writer
    for n in range(writers):
        mine = [r["data"]["message"] for r in records if r["data"]["component"] == f"writer-{n}"]
        assert mine == ["x" * 500 + str(i) for i in range(per_writer)]
    if "seq" in records[0]:
        assert [r["seq"] for r in records] == list(range(1, writers * per_writer + 1))


def test_audit_log_encodes_awkward_values(audit: types.ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    odd: dict[str, Any] = {
        "set": {3, 1},
        "when": _WHEN,
        "status": ModelStatus.STANDBY,
        "obj": object(),
        "path": Path("/x"),
    }
    with audit.AuditLog({"path": str(path)}) as sink:
        sink.trace(TraceEntry(Severity.ERROR, _WHEN, "router", "odd", metadata=odd))
        sink.trace(
            TraceEntry(Severity.ERROR, _WHEN, "router", "worse", metadata={(1, 2): "tuple key"})
        )
    first, second = _read_lines(path)
    metadata = first["data"]["metadata"]
    assert metadata["set"] == [1, 3]
    assert metadata["when"] == _WHEN.isoformat()
    assert metadata["status"] == "standby"
    assert metadata["obj"].startswith("<object object")
    assert "tuple key" in json.dumps(second["data"])


def test_audit_log_rejects_unknown_config(audit: types.ModuleType) -> None:
    with pytest.raises(ValueError, match="unknown audit log config key"):
        audit.AuditLog({"paht": "x.jsonl"})


def test_audit_log_1_0_is_the_plain_earlier_format(load: Loader, tmp_path: Path) -> None:
    sink_module = load(AUDIT_1_0, "acme_audit_log.sink")
    with pytest.raises(ValueError, match="expected only 'path'"):
        sink_module.AuditLog({"redact": True})
    with sink_module.AuditLog({"path": str(tmp_path / "a.jsonl")}) as sink:
        _feed(sink)
    assert all(set(r) == {"at", "kind", "data"} for r in _read_lines(tmp_path / "a.jsonl"))


@pytest.fixture
def audit11(load: Loader) -> types.ModuleType:
    return load(AUDIT_1_1, "acme_audit_log")


_SECRET_CONTENT = "the launch code is 0000"


def _event_with_content() -> RoutingEvent:
    return RoutingEvent(
        EventType.MODEL_ACTIVATED,
        _WHEN,
        model_id="echo.echo-1",
        metadata={
            "messages": [
                {"role": "system", "content": "be terse"},
                {"role": "user", "content": [{"type": "text", "text": _SECRET_CONTENT}]},
            ],
            "prompt": _SECRET_CONTENT,
            "api_key": "sk-live-123",
            "Authorization": "Bearer abc",
            "empty": {"content": None},
        },
    )


def test_audit_log_1_1_numbers_lines(audit11: types.ModuleType, tmp_path: Path) -> None:
    with audit11.AuditLog({"path": str(tmp_path / "a.jsonl")}) as sink:
        assert sink.last_seq == 0
        _feed(sink)
        assert sink.last_seq == 4
    records = _read_lines(tmp_path / "a.jsonl")
    assert [r["seq"] for r in records] == [1, 2, 3, 4]
    assert list(records[0]) == ["seq", "at", "kind", "data"]


def test_audit_log_1_1_redacts_message_content(audit11: types.ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    with audit11.AuditLog({"path": str(path), "redact": True}) as sink:
        sink.emit(_event_with_content())
    text = path.read_text("utf-8")
    for secret in (_SECRET_CONTENT, "be terse", "sk-live-123", "Bearer abc"):
        assert secret not in text
    metadata = json.loads(text)["data"]["metadata"]
    assert metadata["messages"] == [
        {"role": "system", "content": audit11.REDACTED},
        {"role": "user", "content": audit11.REDACTED},
    ]
    assert metadata["prompt"] == audit11.REDACTED
    assert metadata["empty"] == {"content": None}


def test_audit_log_1_1_masks_secrets_even_without_redact(
    audit11: types.ModuleType, tmp_path: Path
) -> None:
    path = tmp_path / "a.jsonl"
    with audit11.AuditLog({"path": str(path)}) as sink:
        sink.emit(_event_with_content())
    metadata = _read_lines(path)[0]["data"]["metadata"]
    assert metadata["prompt"] == _SECRET_CONTENT
    assert metadata["api_key"] == audit11.REDACTED
    assert metadata["Authorization"] == audit11.REDACTED


def test_audit_log_1_1_custom_redact_keys(audit11: types.ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    with audit11.AuditLog({"path": str(path), "redact": True, "redact_keys": ["Prompt"]}) as sink:
        sink.emit(_event_with_content())
    metadata = _read_lines(path)[0]["data"]["metadata"]
    assert metadata["prompt"] == audit11.REDACTED
    assert metadata["messages"][0]["content"] == "be terse"


def test_audit_log_1_1_to_jsonable_is_strict_json(audit11: types.ModuleType) -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    value = {
        "nan": float("nan"),
        "inf": float("-inf"),
        "bytes": b"\x00\xff",
        "error": RuntimeError("boom"),
        "nested": (1, [2, {3}]),
        7: "int key",
        ModelStatus.ACTIVE: "enum key",
        "cyclic": cyclic,
        "state": ModelState("m"),
    }
    data = audit11.to_jsonable(value)
    json.dumps(data, allow_nan=False)
    assert (data["nan"], data["inf"]) == ("nan", "-inf")
    assert data["bytes"] == {"base64": "AP8="}
    assert data["error"] == {"type": "RuntimeError", "message": "boom"}
    assert data["nested"] == [1, [2, [3]]]
    assert (data["7"], data["active"]) == ("int key", "enum key")
    assert data["state"]["status"] == "active"
    assert "<max depth>" in json.dumps(data["cyclic"])


@pytest.mark.parametrize(
    "config",
    [
        {"redact": "yes"},
        {"redact_keys": "content"},
        {"redact_keys": [1]},
        {"path": 5},
        {"extra": 1},
    ],
)
def test_audit_log_1_1_rejects_bad_config(
    audit11: types.ModuleType, config: dict[str, Any]
) -> None:
    with pytest.raises(audit11.InvalidAuditLogConfig):
        audit11.AuditLog(config)


# -- Weighted rotation --------------------------------------------------------------------


@pytest.fixture
def rotation(load: Loader) -> types.ModuleType:
    return load(ROTATION, "demo_weighted_rotation")


def _states(*ids: str, standby: tuple[str, ...] = ()) -> list[ModelState]:
    return [
        ModelState(
            model_id, status=ModelStatus.STANDBY if model_id in standby else ModelStatus.ACTIVE
        )
        for model_id in ids
    ]


_ANY_REQUEST = CompletionRequest(model="chat", messages=[])


def _draws(selection: SelectionStrategy, candidates: list[ModelState], n: int) -> list[str]:
    picks = []
    for _ in range(n):
        chosen = selection.select(candidates, _ANY_REQUEST)
        assert chosen is not None
        picks.append(chosen.model_id)
    return picks


def test_rotation_selects_in_proportion_to_weights(rotation: types.ModuleType) -> None:
    policy = rotation.WeightedRotationPolicy({"weights": {"a": 1, "b": 3, "c": 0}, "seed": 7})
    draws = _draws(policy.selection, _states("a", "b", "c", "d"), 20_000)
    share = {m: draws.count(m) / len(draws) for m in "abcd"}
    # expected a 1/5, b 3/5, c never, d (default weight 1) 1/5; 0.02 is > 6 sigma here
    assert share["c"] == 0
    assert share["a"] == pytest.approx(0.2, abs=0.02)
    assert share["b"] == pytest.approx(0.6, abs=0.02)
    assert share["d"] == pytest.approx(0.2, abs=0.02)


def test_rotation_draws_are_reproducible_for_a_seed(rotation: types.ModuleType) -> None:
    config = {"weights": {"a": 2, "b": 1, "c": 1}, "seed": 42}
    first = _draws(rotation.WeightedRotationPolicy(config).selection, _states("a", "b", "c"), 200)
    again = _draws(rotation.WeightedRotationPolicy(config).selection, _states("c", "a", "b"), 200)
    other = _draws(
        rotation.WeightedRotationPolicy({**config, "seed": 43}).selection,
        _states("a", "b", "c"),
        200,
    )
    assert first == again
    assert first != other


def test_rotation_never_selects_standby_or_zero_weight(rotation: types.ModuleType) -> None:
    selection = rotation.WeightedRotationPolicy({"weights": {"z": 0}, "seed": 1}).selection
    candidates = _states("a", "b", "z", standby=("a",))
    assert set(_draws(selection, candidates, 200)) == {"b"}
    assert selection.score(candidates[0], _ANY_REQUEST) == 0.0
    assert selection.score(candidates[1], _ANY_REQUEST) == 1.0
    assert selection.select(_states("a", "z", standby=("a",)), _ANY_REQUEST) is None
    assert selection.select([], _ANY_REQUEST) is None


def test_rotation_deactivates_after_consecutive_failures(rotation: types.ModuleType) -> None:
    deactivation = rotation.WeightedRotationPolicy({"failure_threshold": 2}).deactivation
    state = ModelState("a")
    state.failure_count = 1
    assert not deactivation.should_deactivate(state)
    assert deactivation.get_reason(state) is None
    state.failure_count = 2
    assert deactivation.should_deactivate(state)
    assert deactivation.get_reason(state) is DeactivationReason.ERROR_THRESHOLD
    state.status = ModelStatus.STANDBY
    assert not deactivation.should_deactivate(state)


def test_rotation_recovers_after_cooldown(rotation: types.ModuleType) -> None:
    now = [1000.0]
    recovery = rotation.WeightedRotationPolicy(
        {"cooldown_seconds": 30}, clock=lambda: now[0]
    ).recovery
    state = ModelState(
        "a",
        status=ModelStatus.STANDBY,
        last_failure_at=1000.0,
        deactivation_reason=DeactivationReason.ERROR_THRESHOLD,
    )
    assert recovery.get_recovery_schedule(state) == 1030.0
    now[0] = 1029.9
    assert not recovery.should_recover(state)
    now[0] = 1030.0
    assert recovery.should_recover(state)
    state.cooldown_until = 2000.0  # an explicit deadline wins
    assert not recovery.should_recover(state)
    now[0] = 2000.0
    assert recovery.should_recover(state)
    state.deactivation_reason = DeactivationReason.MANUAL
    assert not recovery.should_recover(state)
    assert recovery.get_recovery_schedule(state) is None
    active = ModelState("b")
    assert not recovery.should_recover(active)
    assert recovery.get_recovery_schedule(active) is None
    assert recovery.should_recover(ModelState("c", status=ModelStatus.STANDBY))


@pytest.mark.parametrize(
    "config",
    [
        {"weights": {"a": -1}},
        {"weights": {"a": float("inf")}},
        {"weights": ["a"]},
        {"seed": "x"},
        {"failure_threshold": 0},
        {"cooldown_seconds": -5},
        {"bogus": 1},
    ],
)
def test_rotation_rejects_bad_config(rotation: types.ModuleType, config: dict[str, Any]) -> None:
    with pytest.raises(rotation.InvalidRotationConfig) as raised:
        rotation.WeightedRotationPolicy(config)
    assert isinstance(raised.value, ValueError)


# -- Canary ---------------------------------------------------------------------------------


def test_canary_leaves_a_marker_on_import(
    load: Loader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "canary.txt"
    monkeypatch.setenv("MODELMESH_CANARY_PATH", str(marker))
    load(CANARY, "demo_canary.canary")
    assert marker.read_text("utf-8") == "demo_canary\n"


def test_canary_marker_names_the_private_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "canary.txt"
    monkeypatch.setenv("MODELMESH_CANARY_PATH", str(marker))
    namespace = "_mmpkg_test_" + re.sub(r"[^a-z0-9]", "_", CANARY)
    try:
        _import_private(CANARY, "demo_canary.canary")
    finally:
        _purge_modules({namespace})
    assert marker.read_text("utf-8") == f"{namespace}.demo_canary\n"


def test_canary_is_silent_without_the_variable(
    load: Loader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELMESH_CANARY_PATH", raising=False)
    monkeypatch.chdir(tmp_path)
    load(CANARY, "demo_canary")
    assert list(tmp_path.iterdir()) == []


# -- End to end through a real ModelMesh ------------------------------------------------------


def _mesh(provider: ProviderConnector, sink: ObservabilityConnector) -> ModelMesh:
    """The bridging recipe: pre-built provider instance, observability set before initialize."""
    config = MeshConfig.from_dict(
        {
            "providers": {
                "echo": {"connector": "demo.echo.v1", "instance": provider},
            },
            # Pool model IDs are "<vendor>.<model>"; ModelMesh sends the part after the first
            # dot to the provider and, with no "capabilities" here, asks list_models() for them.
            "models": {
                "echo.echo-1": {"provider": "demo.echo.v1"},
                "echo.echo-1-mini": {"provider": "demo.echo.v1"},
            },
            # The full capability path: the short alias "chat-completion" matches nothing here.
            "pools": {"chat": {"capability": CHAT}},
        }
    )
    mesh = ModelMesh()
    mesh._observability = sink  # ModelMesh 0.1.1 has no public setter; must precede initialize
    mesh.initialize(config)
    return mesh


def _chat(client: MeshClient, text: str) -> CompletionResponse:
    """One non-streaming chat completion through ModelMesh's OpenAI-style client."""
    messages = [{"role": "user", "content": text}]
    response = client.chat.completions.create(model="chat", messages=messages)
    assert isinstance(response, CompletionResponse)
    return response


def _chat_stream(client: MeshClient, text: str) -> list[CompletionResponse]:
    """One streaming chat completion, drained."""
    messages = [{"role": "user", "content": text}]
    stream = client.chat.completions.create(model="chat", messages=messages, stream=True)
    assert not isinstance(stream, CompletionResponse)
    return list(stream)


def _content(response: CompletionResponse) -> str | None:
    message = response.choices[0].message
    assert message is not None
    return message.content


def test_modelmesh_routes_a_chat_completion_to_the_echo_provider(
    load: Loader, tmp_path: Path
) -> None:
    echo = load(ECHO, "modelmesh_echo_provider")
    audit_sink = load(AUDIT_1_1, "acme_audit_log.sink")
    path = tmp_path / "audit.jsonl"
    provider = echo.EchoProvider({"answers": {"ping": "pong"}})
    with audit_sink.AuditLog({"path": str(path), "redact": True}) as sink:
        mesh = _mesh(provider, sink)
        assert [m.model_id for m in mesh.pools["chat"].models] == [
            "echo.echo-1",
            "echo.echo-1-mini",
        ]
        client = mesh.get_client()
        response = _chat(client, "hello mesh")
        canned = _chat(client, "ping")
        chunks = _chat_stream(client, "streamed reply")
        mesh.shutdown()
    assert _content(response) == "echo: hello mesh"
    assert response.model == "echo-1"  # the pool's default strategy sticks to the first model
    assert response.id.startswith("chatcmpl-echo-")
    assert _content(canned) == "pong"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices[0].delta) == (
        "echo: streamed reply"
    )
    assert provider.check_quota().used > 0

    records = _read_lines(path)
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert {r["kind"] for r in records} == {"trace"}  # ModelMesh 0.1.1 only calls trace()
    messages = [(r["data"]["component"], r["data"]["message"]) for r in records]
    assert ("router", "Request succeeded on 'echo.echo-1'") in messages
    assert ("mesh", "Initialized: 1 provider(s), 1 pool(s)") in messages
    assert messages[-1] == ("mesh", "ModelMesh shut down")


def test_modelmesh_pool_uses_the_weighted_selection(load: Loader, tmp_path: Path) -> None:
    echo = load(ECHO, "modelmesh_echo_provider")
    audit_sink = load(AUDIT_1_0, "acme_audit_log.sink")
    rotation = load(ROTATION, "demo_weighted_rotation")
    config = {"weights": {"echo.echo-1": 1, "echo.echo-1-mini": 3}, "seed": 3}
    policy = rotation.WeightedRotationPolicy(config)
    with audit_sink.AuditLog({"path": str(tmp_path / "audit.jsonl")}) as sink:
        mesh = _mesh(echo.EchoProvider(), sink)
        mesh.pools["chat"].set_strategy(policy.selection)
        client = mesh.get_client()
        served = [_chat(client, "hi").model for _ in range(400)]
        mesh.shutdown()
    assert set(served) == {"echo-1", "echo-1-mini"}
    assert served.count("echo-1-mini") / len(served) == pytest.approx(0.75, abs=0.08)
    # Same seed, same draws: ModelMesh made exactly one select() call per request.
    replay = rotation.WeightedRotationPolicy(config).selection
    states = _states("echo.echo-1", "echo.echo-1-mini")
    assert served == [m.split(".", 1)[1] for m in _draws(replay, states, 400)]
