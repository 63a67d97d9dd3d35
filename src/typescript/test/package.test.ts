/** Archive hardening, manifests, IDs, connector types, PEP 440 resolution and the registry. */

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { parseRequirement } from "../src/client/requirements.js";
import { choose } from "../src/client/resolve.js";
import { ConnectorError } from "../src/errors.js";
import { readZip } from "../src/package/archive.js";
import { classify, ConnectorType } from "../src/package/connector-types.js";
import { parseConnectorId } from "../src/package/ids.js";
import { parseManifest } from "../src/package/manifest.js";
import { ConnectorRegistry } from "../src/registry.js";
import { manifestYaml } from "./support/publisher.js";
import { buildZip, type ZipEntry } from "./support/zip-writer.js";

const MANIFEST = manifestYaml("p", "1.0.0", [
  { id: "p.sink.v1", type: "observability", node: { module: "index.mjs", export: "Sink" } },
]);

async function archiveCode(entries: ZipEntry[]): Promise<string> {
  try {
    await readZip(buildZip(entries), "t.zip");
    return "ok";
  } catch (err) {
    if (err instanceof ConnectorError) {
      return err.code;
    }
    throw err;
  }
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConnectorError) {
      return err.code;
    }
    throw err;
  }
  return "ok";
}

describe("archive reader", () => {
  const m: ZipEntry = { name: "modelmesh-package.yaml", data: MANIFEST };
  const cases: [string, ZipEntry[], string][] = [
    ["a clean package", [m, { name: "index.mjs", data: "x", method: 8 }], "ok"],
    ["a directory entry", [m, { name: "lib/" }, { name: "lib/a.mjs", data: "x" }], "ok"],
    ["no manifest", [{ name: "index.mjs", data: "x" }], "package.archive"],
    ["manifest not at the root", [{ name: "sub/modelmesh-package.yaml", data: MANIFEST }], "package.archive"],
    ["a second manifest", [m, { name: "sub/MODELMESH-PACKAGE.yaml", data: MANIFEST }], "package.archive"],
    ["duplicate entries", [m, { name: "a.mjs", data: "1" }, { name: "a.mjs", data: "2" }], "package.archive"],
    ["case-folding collision", [m, { name: "A.mjs", data: "1" }, { name: "a.mjs", data: "2" }], "package.archive"],
    ["NFD name", [m, { name: "cafe\u0301.mjs", data: "1" }], "package.archive"],
    ["traversal", [m, { name: "../evil.mjs", data: "1" }], "package.archive"],
    ["absolute path", [m, { name: "/etc/x", data: "1" }], "package.archive"],
    ["drive letter", [m, { name: "C:/x", data: "1" }], "package.archive"],
    ["backslash", [m, { name: "a\\b.mjs", data: "1" }], "package.archive"],
    ["NUL in raw name", [m, { name: Uint8Array.from([0x61, 0, 0x62]), data: "1" }], "package.archive"],
    ["control character", [m, { name: "a\u0007.mjs", data: "1" }], "package.archive"],
    ["format character", [m, { name: "a\u202e.mjs", data: "1" }], "package.archive"],
    ["private-use character", [m, { name: "a\ue000.mjs", data: "1" }], "package.archive"],
    ["non-ASCII without UTF-8 flag", [m, { name: "caf\u00e9.mjs", data: "1", flags: 0 }], "package.archive"],
    ["non-ASCII with UTF-8 flag", [m, { name: "caf\u00e9.mjs", data: "1" }], "ok"],
    ["invalid UTF-8", [m, { name: Uint8Array.from([0x61, 0xff]), data: "1", flags: 0x800 }], "package.archive"],
    ["unicode path extra field", [m, { name: "a.mjs", data: "1", extra: [{ id: 0x7075, data: new Uint8Array(5) }] }], "package.archive"],
    ["unicode comment extra field", [m, { name: "a.mjs", data: "1", extra: [{ id: 0x6375, data: new Uint8Array(5) }] }], "package.archive"],
    ["Windows device name", [m, { name: "lib/con.mjs", data: "1" }], "package.archive"],
    ["Windows reserved character", [m, { name: "a?.mjs", data: "1" }], "package.archive"],
    ["trailing dot", [m, { name: "lib./a.mjs", data: "1" }], "package.archive"],
    [".pyc file", [m, { name: "a.pyc", data: "1" }], "package.archive"],
    ["native module", [m, { name: "a.node", data: "1" }], "package.archive"],
    ["shared library", [m, { name: "lib/x.so.1", data: "1" }], "package.archive"],
    ["__pycache__", [m, { name: "__pycache__/a.py", data: "1" }], "package.archive"],
    [".git", [m, { name: ".git/config", data: "1" }], "package.archive"],
    ["symlink", [m, { name: "link", data: "/etc/passwd", unixMode: 0o120777 }], "package.archive"],
    ["device file", [m, { name: "dev", data: "", unixMode: 0o020644 }], "package.archive"],
    ["encrypted entry", [m, { name: "a.mjs", data: "1", flags: 1 }], "package.archive"],
    ["unknown compression method", [m, { name: "a.mjs", data: "1", method: 14 }], "package.archive"],
    ["declared size lies low", [m, { name: "a.mjs", data: "hello", method: 8, declaredSize: 2 }], "package.archive"],
    ["declared size lies high", [m, { name: "a.mjs", data: "hello", declaredSize: 9 }], "package.archive"],
    ["bad CRC", [m, { name: "a.mjs", data: "hello", crc: 1 }], "package.archive"],
    ["local name differs", [m, { name: "a.mjs", data: "1", localName: "b.mjs" }], "package.archive"],
    ["file used as directory", [m, { name: "a", data: "1" }, { name: "a/b", data: "1" }], "package.archive"],
  ];
  for (const [why, entries, expected] of cases) {
    test(`${why} → ${expected}`, async () => {
      assert.equal(await archiveCode(entries), expected);
    });
  }
  test("a decompression bomb stops at the cap", async () => {
    const zip = buildZip([m, { name: "bomb.mjs", data: new Uint8Array(2 * 1024 * 1024), method: 8, declaredSize: 10 }]);
    await assert.rejects(readZip(zip, "t.zip", { maxEntries: 10, maxFileSize: 1024 * 1024, maxTotalSize: 1024 * 1024 }), /cap|bytes/);
  });
  test("not a zip at all", async () => {
    await assert.rejects(readZip(new Uint8Array([1, 2, 3]), "t.zip"), /not a valid zip/);
  });
});

describe("manifest", () => {
  const base = (extra = "", node = "    node: {module: index.mjs, export: Sink}\n") =>
    `name: p\nversion: "1.0.0"\ndescription: d\n${extra}connectors:\n  - id: p.sink.v1\n    type: observability\n${node}`;
  const cases: [string, string, string][] = [
    ["node entry", base(), "ok"],
    ["python entry only", base("", "    entry: p.sink:Sink\n"), "ok"],
    ["neither entry", base("", ""), "package.manifest"],
    ["unknown top key", base("extra: 1\n"), "package.manifest"],
    ["unnormalized version", base().replace('"1.0.0"', '"1.0-alpha1"'), "package.manifest"],
    ["float version", base().replace('"1.0.0"', "1.0"), "package.manifest"],
    ["node module traversal", base("", "    node: {module: ../x.mjs, export: Sink}\n"), "package.manifest"],
    ["node module not JS", base("", "    node: {module: x.py, export: Sink}\n"), "package.manifest"],
    ["bad export name", base("", "    node: {module: x.mjs, export: 'a-b'}\n"), "package.manifest"],
    ["alias", "a: &x 1\nb: *x\n", "package.manifest"],
    ["duplicate key", base().replace("description: d\n", "description: d\ndescription: e\n"), "package.manifest"],
    ["bad requires-modelmesh", base("requires-modelmesh: '=>1'\n"), "package.manifest"],
  ];
  for (const [why, text, expected] of cases) {
    test(`${why} → ${expected}`, () => {
      assert.equal(code(() => parseManifest(new TextEncoder().encode(text), "m")), expected);
    });
  }
});

describe("connector IDs and types", () => {
  for (const [id, expected] of [
    ["acme.audit-log.v1", "ok"],
    ["acme.audit-log.v0", "input.connector-id"],
    ["acme.audit-log.v01", "input.connector-id"],
    ["Acme.x.v1", "input.connector-id"],
    ["acme.x", "input.connector-id"],
    ["acme.a--b.v1", "input.connector-id"],
    ["acme.x.v1234567890", "input.connector-id"],
  ] as const) {
    test(`${id} → ${expected}`, () => assert.equal(code(() => parseConnectorId(id)), expected));
  }
  test("classify by methods, including rotation bundles; ambiguity is an error", () => {
    class Secret {
      get(): void {}
    }
    // biome-ignore lint/complexity/noStaticOnlyClass: a rotation bundle exposes its parts as statics
    class Bundle {
      static deactivation = 1;
      static recovery = 2;
      static selection = 3;
    }
    class Nothing {}
    class Both {
      get(): void {}
      emit(): void {}
      log(): void {}
      flush(): void {}
      trace(): void {}
    }
    assert.equal(classify(Secret), ConnectorType.SECRET_STORE);
    assert.equal(classify(Bundle), ConnectorType.ROTATION);
    assert.equal(code(() => classify(Nothing)), "registry.type");
    assert.equal(code(() => classify(Both)), "registry.type");
  });
});

describe("resolution (PEP 440)", () => {
  const c = (version: string, yanked = false) => ({ version, yanked, yankedReason: yanked ? "broken" : null });
  const all = [c("1.0.0"), c("1.1.0"), c("1.2.0", true), c("2.0.0a1")];
  const cases: [string, boolean, string][] = [
    ["p", false, "1.1.0"],
    ["p>=1.0,<2", false, "1.1.0"],
    ["p==1.2.0", false, "1.2.0"],
    ["p>=1.2", false, "resolution"],
    ["p", true, "2.0.0a1"],
    ["p>=2.0.0a1", false, "2.0.0a1"],
    ["p~=1.0", false, "1.1.0"],
    ["p==1.*", false, "1.1.0"],
    ["p!=1.1.0", false, "1.0.0"],
    ["p<1", false, "resolution"],
  ];
  for (const [req, pre, expected] of cases) {
    test(`${req}${pre ? " (prereleases)" : ""} → ${expected}`, () => {
      let got: string;
      try {
        got = choose(parseRequirement(req), all, pre).candidate.version;
      } catch (err) {
        got = (err as ConnectorError).code;
      }
      assert.equal(got, expected);
    });
  }
  test("an exactly pinned yanked version warns", () => {
    assert.match(choose(parseRequirement("p==1.2.0"), all).warning ?? "", /yanked: broken/);
  });
  test("extras, markers and URLs are refused", () => {
    for (const bad of ["p[x]", "p; python_version>'3'", "p @ https://x", "p=>1"]) {
      assert.equal(code(() => parseRequirement(bad)), "input.package-spec");
    }
  });
});

describe("registry", () => {
  class Sink {
    static connectorId = "acme.sink.v1";
    static description = "sink";
    emit(): void {}
    log(): void {}
    flush(): void {}
    trace(): void {}
  }
  test("register, get, list; duplicate and unknown IDs throw with codes", () => {
    const reg = new ConnectorRegistry();
    reg.register("acme.sink.v1", Sink);
    assert.equal(reg.getConnector("acme.sink.v1"), Sink);
    assert.deepEqual(reg.listConnectors("observability"), [
      { id: "acme.sink.v1", connector_type: ConnectorType.OBSERVABILITY, version: "0", description: "sink" },
    ]);
    assert.deepEqual(reg.listConnectors("storage"), []);
    assert.equal(code(() => reg.register("acme.sink.v1", Sink)), "registry.duplicate");
    assert.equal(code(() => reg.getConnector("acme.sinc.v1")), "registry.unknown");
    assert.match(
      (() => {
        try {
          reg.getConnector("acme.sinc.v1");
        } catch (err) {
          return (err as Error).message;
        }
        return "";
      })(),
      /did you mean acme.sink.v1/,
    );
    assert.equal(code(() => reg.listConnectors("nope")), "input.connector-type");
    assert.equal(code(() => reg.register("other.sink.v1", Sink)), "registry.type");
    assert.equal(code(() => reg.register("bad id", Sink)), "input.connector-id");
    assert.equal(code(() => reg.register("acme.x.v1", class {}, { connectorType: "storage" })), "registry.type");
  });
});
