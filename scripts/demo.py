"""The demo: serve the committed signed index on 127.0.0.1, load verified connectors, route a request.

1. Serves ``index/`` with a plain static HTTP server on a free loopback port.
2. Writes a ModelMesh YAML whose ``connectors.packages`` names packages in that index and whose
   trust root is the shipped ``keys/root.json``.
3. Loads it through the verified loader (resolve → download → verify → cache → import), prints
   the registry table, and sends one chat completion through ModelMesh to the package provider,
   with the package audit-log sink receiving ModelMesh's events.
"""

from __future__ import annotations

import functools
import json
import logging
import socket
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from modelmesh_connectors.bridge import load_mesh

ROOT = Path(__file__).resolve().parent.parent


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    handler = functools.partial(_Handler, directory=str(ROOT / "index"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        with tempfile.TemporaryDirectory(prefix="modelmesh-demo-") as tmp:
            work = Path(tmp)
            config = {
                "connectors": {
                    "index": url,
                    "trust_root": str(ROOT / "keys" / "root.json"),
                    "cache_dir": str(work / "cache"),
                    "packages": [
                        "modelmesh-echo-provider",
                        "acme-audit-log>=1.1",
                        "demo-weighted-rotation",
                    ],
                },
                "providers": {
                    "echo": {"connector": "demo.echo.v1", "config": {"prefix": "echo: "}}
                },
                "models": {"echo.echo-1": {"provider": "demo.echo.v1"}},
                "pools": {"chat": {"capability": "generation.text-generation.chat-completion"}},
                "observability": {
                    "connector": "acme.audit-log.v1",
                    "config": {"path": str(work / "audit.jsonl"), "redact": True},
                },
            }
            path = work / "modelmesh.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            print(f"serving index/ at {url}; trust root keys/root.json\n")
            start = time.perf_counter()
            loaded = load_mesh(path)
            elapsed = time.perf_counter() - start
            registry = loaded.registry
            rows = [
                (i.id, i.connector_type.value, i.version, str(registry.origin(i.id)))
                for i in registry.list_connectors()
                if registry.origin(i.id).kind != "builtin"
            ]
            builtins = sum(
                1 for i in registry.list_connectors() if registry.origin(i.id).kind == "builtin"
            )
            print(
                f"verified and loaded {len(rows)} package connectors in {elapsed * 1000:.0f} ms "
                f"(+{builtins} ModelMesh built-ins):"
            )
            table = [("ID", "TYPE", "VERSION", "ORIGIN"), *rows]
            widths = [max(len(r[i]) for r in table) for i in range(4)]
            for row in table:
                print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
            response = loaded.client.chat.completions.create(
                model="chat",
                messages=[{"role": "user", "content": "hello from a verified package"}],
            )
            print(
                f"\nModelMesh answered via {response.model}: {response.choices[0].message.content!r}"
            )
            lines = (work / "audit.jsonl").read_text().splitlines()
            print(
                f"audit log (package observability connector) received {len(lines)} events; last:"
            )
            print("  " + json.dumps(json.loads(lines[-1]))[:160])
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
