/**
 * What an archive URL names (as `tests/unit/test_binding.py` and the URL rows of
 * `tests/attack/test_url_binding.py`): a detached `.sig` verifies for any release the trusted
 * keys ever signed, so a server that may put files at an entry's URL can try an older release
 * (downgrade), a yanked or removed one, or another package (substitution). Pure cases for the
 * rules, then attack rows over a signed test index on 127.0.0.1, then the controls that must
 * still load (so the refusals can fail).
 */

import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";

import { bindRelease, urlFileName, urlIsUnder } from "../src/client/binding.js";
import { Loader } from "../src/client/loader.js";
import { ConnectorError } from "../src/errors.js";
import { ConnectorRegistry } from "../src/registry.js";
import type { Release } from "../src/trust/metadata.js";
import { connectorSource, jsPackage, manifestYaml, sha256, TestPublisher } from "./support/publisher.js";
import { TestServer } from "./support/server.js";
import { zipFiles } from "./support/zip-writer.js";
import { tempDirs, throwsWith } from "./support/scratch.js";

const tempDir = tempDirs("mmc-bind-");

// -- pure: the rules ------------------------------------------------------------------------

const BASE = "https://cdn.example/pkgs/";

function release(name = "acme-audit-log", version = "2.0.0"): Release {
  return {
    name,
    version,
    file: `archives/${name}/${name}-${version}.zip`,
    sha256: "ab".repeat(32),
    length: 10,
    requiresModelmesh: null,
    connectors: [{ id: "acme.audit-log.v1", type: "observability" }],
    runtimes: ["node"],
  };
}

describe("urlFileName", () => {
  for (const [url, name] of [
    [`${BASE}acme-audit-log-2.0.0.zip`, "acme-audit-log-2.0.0.zip"],
    [`${BASE}acme%2Daudit-log-2.0.0.zip`, "acme-audit-log-2.0.0.zip"], // RFC 3986 equivalent
    [`${BASE}acme-audit-log-2.0.0%2blocal.zip`, "acme-audit-log-2.0.0+local.zip"],
    [`${BASE}acme-audit-log-2.0.0+local.zip`, "acme-audit-log-2.0.0+local.zip"],
    ["https://cdn.example/pkg.zip", "pkg.zip"],
  ] as const) {
    test(`${url} names ${name}`, () => {
      assert.equal(urlFileName(url), name);
    });
  }

  for (const [url, pattern] of [
    [`${BASE}a%2Facme-audit-log-2.0.0.zip`, /encodes '\/'/],
    [`${BASE}a%2facme-audit-log-2.0.0.zip`, /encodes '\/'/],
    [`${BASE}x%2F..%2Facme-audit-log-2.0.0.zip`, /encodes '\/'/],
    [`${BASE}a%5Cacme-audit-log-2.0.0.zip`, /encodes '\\\\'/],
    [`${BASE}acme-audit-log-2.0.0%252ezip`, /encodes '%'/],
    [`${BASE}%2e%2e/acme-audit-log-2.0.0.zip`, /dot segment/],
    [`${BASE}%2E/acme-audit-log-2.0.0.zip`, /dot segment/],
    ["https://cdn.example/x/../acme-audit-log-2.0.0.zip", /dot segment/],
    [`${BASE}acme-audit-log-2.0.0%C0%AEzip`, /not valid UTF-8/],
    [`${BASE}acme-audit-log-2.0.0%ED%A0%80.zip`, /not valid UTF-8/], // an encoded surrogate
    [`${BASE}acme-audit-log-2.0.0%zip`, /malformed percent/],
    [`${BASE}acme-audit-log-2.0.0%2.zip`, /malformed percent/],
    [`${BASE}acme-audit-log-2.0.0.zip%00`, /encodes '\\x00'/],
    [`${BASE}acme-audit-log-2.0.0.zip%0A`, /encodes '\\n'/],
    [`${BASE}acme-audit-log-2.0.0.zip%7F`, /encodes '\\x7f'/],
    [`${BASE}acme-audit-log-2.0.0.zip?x=1`, /query string/],
    [`${BASE}download?file=acme-audit-log-2.0.0.zip`, /query string/],
    [`${BASE}acme-audit-log-2.0.0.zip?`, /query string/],
    [`${BASE}acme-audit-log-2.0.0.zip/`, /not a plain archive name/],
    [`${BASE}acme-audit-log-2.0.0.zip;v=1`, /not a plain archive name/],
    [`${BASE}acme-audit-log-2.0.0%20.zip`, /not a plain archive name/],
    [`${BASE}acme-audit-l%C3%B6g-2.0.0.zip`, /not a plain archive name/], // non-ASCII
    [`${BASE}.acme-audit-log-2.0.0.zip`, /not a plain archive name/],
    ["https://cdn.example", /not a plain archive name/],
  ] as const) {
    test(`${url} is refused: ${pattern.source}`, () => {
      throwsWith(() => urlFileName(url), "trust.policy", pattern);
    });
  }
});

describe("bindRelease", () => {
  test("the named release binds", () => {
    bindRelease(release(), "acme-audit-log-2.0.0.zip", "x");
  });

  for (const fileName of [
    "acme-audit-log-1.0.0.zip", // downgrade
    "other-2.0.0.zip", // substitution
    "ACME-AUDIT-LOG-2.0.0.zip", // case differs: names compare exactly
    "acme-audit-log-2.0.0.ZIP",
    "acme-audit-log-2.0.0",
    "acme-audit-log-2.0.0.zip.zip",
    "acme-2.0.0.zip",
  ]) {
    test(`${fileName} does not name acme-audit-log 2.0.0`, () => {
      throwsWith(() => bindRelease(release(), fileName, "x"), "trust.policy", /downgrade or substitution/);
    });
  }

  test("name and version split only as signed, at the last '-' of a normalized version", () => {
    bindRelease(release("a-b", "1.0"), "a-b-1.0.zip", "x");
    // Signed (the release format allows it), same file name, but not a PEP 440 version.
    throwsWith(() => bindRelease(release("a", "b-1.0"), "a-b-1.0.zip", "x"), "trust.policy", /normalized PEP 440/);
    // Valid PEP 440, but not normalized.
    throwsWith(() => bindRelease(release("a", "1.0-1"), "a-1.0-1.zip", "x"), "trust.policy", /normalized PEP 440/);
    bindRelease(release("a", "1.0.post1+local.7"), "a-1.0.post1+local.7.zip", "x");
    bindRelease(release("a", "1!2.0rc1"), "a-1!2.0rc1.zip", "x");
  });

  test("the file name must state the signed name and version, not only equal the signed file", () => {
    // Verified releases always have file = archives/<name>/<name>-<version>.zip (metadata.ts);
    // the binding does not rely on that: a file that disagrees with name and version is refused.
    const odd = { ...release(), file: "archives/x/other-2.0.0.zip" };
    throwsWith(() => bindRelease(odd, "other-2.0.0.zip", "x"), "trust.policy", /\(other 2\.0\.0\) .*downgrade or substitution/);
    const renamed = { ...release(), file: "archives/acme-audit-log/renamed.zip" };
    throwsWith(() => bindRelease(renamed, "acme-audit-log-2.0.0.zip", "x"), "trust.policy", /\('renamed\.zip'\).*downgrade or substitution/);
  });
});

describe("urlIsUnder", () => {
  for (const [url, base, inside] of [
    ["https://cdn.example/pkgs/a/x-1.zip", BASE, true],
    ["HTTPS://CDN.EXAMPLE/pkgs/x-1.zip", BASE, true],
    ["https://cdn.example:443/pkgs/x-1.zip", BASE, true],
    ["https://cdn.example/pkgs/x-1.zip", "https://cdn.example:443/pkgs/", true],
    ["https://cdn.example/%70kgs/x-1.zip", BASE, true],
    ["https://cdn.example/pkgs2/x-1.zip", BASE, false],
    ["https://cdn.example/x-1.zip", BASE, false],
    ["https://cdn.example:8443/pkgs/x-1.zip", BASE, false],
    ["http://cdn.example/pkgs/x-1.zip", BASE, false],
    ["https://other.example/pkgs/x-1.zip", BASE, false],
    ["https://cdn.example.evil/pkgs/x-1.zip", BASE, false],
    ["https://user@cdn.example/pkgs/x-1.zip", BASE, true],
    ["https://cdn.example@evil.example/pkgs/x-1.zip", BASE, false],
    ["https://cdn.example/anything.zip", "https://cdn.example/", true],
    ["https://cdn.example:notaport/x.zip", BASE, false],
    ["https://[::1/pkgs/x.zip", "https://[::1]/pkgs/", false],
    ["https://[::1]:443/pkgs/x.zip", "https://[::1]/pkgs/", true],
  ] as const) {
    test(`${url} ${inside ? "is" : "is not"} under ${base}`, () => {
      assert.equal(urlIsUnder(url, base), inside);
    });
  }
});

// -- attacks over loopback --------------------------------------------------------------------

const NAME = "demo-sink";
const ID = "demo.sink.v1";
const NEWER = "1.1.0";
const HOSTILE = "6.6.6";
const GHOST = "ghost-sink";
const CONNECTORS = [{ id: ID, type: "observability" }];
/** A valid package for `version` with other bytes than {@link jsPackage}'s. */
const otherBytes = (version: string): Uint8Array =>
  zipFiles({
    "modelmesh-package.yaml": manifestYaml(NAME, version, [{ id: ID, type: "observability", node: { module: "index.mjs", export: "Sink" } }]),
    "index.mjs": connectorSource(ID, "observability", "Sink"),
  });
const zipOf = (version: string, name = NAME): string => `archives/${name}/${name}-${version}.zip`;

/** A signed test index on 127.0.0.1, plus a second server (another origin) on the same files. */
class World {
  readonly pub = new TestPublisher();
  index!: TestServer;
  other!: TestServer;
  readonly warnings: string[] = [];

  async start(): Promise<this> {
    this.pub.commit();
    this.index = await TestServer.start(this.pub.files);
    this.other = await TestServer.start(this.pub.files);
    return this;
  }

  async close(): Promise<void> {
    await this.index.close();
    await this.other.close();
  }

  /** Sign and list `name` `version`. */
  publish(version: string, opts: { name?: string; yanked?: string; data?: Uint8Array } = {}): Uint8Array {
    const name = opts.name ?? NAME;
    const data = opts.data ?? jsPackage(name, version, name === NAME ? ID : "ghost.sink.v1");
    const connectors = name === NAME ? CONNECTORS : [{ id: "ghost.sink.v1", type: "observability" }];
    this.pub.addRelease(name, version, data, connectors, opts.yanked === undefined ? {} : { yanked: opts.yanked });
    return data;
  }

  /** Sign `name` `version` and put it at its path, but list nothing new: unlisted or removed. */
  signUnlisted(version: string, opts: { name?: string; data?: Uint8Array } = {}): void {
    const name = opts.name ?? NAME;
    const listed = [...(this.pub.packages.get(name) ?? [])];
    this.publish(version, opts);
    if (listed.length === 0) {
      this.pub.packages.delete(name);
    } else {
      this.pub.packages.set(name, listed);
    }
  }

  /** The attacker copies a release's archive and its genuine `.sig` to `rel`. */
  serveAs(from: string, rel: string): void {
    this.pub.files.set(rel, this.pub.files.get(from) as Uint8Array);
    this.pub.files.set(`${rel}.sig`, this.pub.files.get(`${from}.sig`) as Uint8Array);
  }

  loader(withIndex = true, requireSignatures = false): Loader {
    return new Loader({
      ...(withIndex ? { index: [this.index.url] } : {}),
      requireSignatures,
      trustRoot: this.pub.anchor(),
      cacheDir: tempDir(),
      now: () => this.pub.now,
      warn: (m) => this.warnings.push(m),
    });
  }

  requests(): string[] {
    return [...this.index.requests, ...this.other.requests];
  }
}

interface Row {
  readonly id: string;
  readonly setup: (w: World) => void;
  /** The entry (set up after the index is served) and what must refuse it. */
  readonly attack: (w: World) => { spec: string; code: string; pattern: RegExp; noIndex?: boolean; noRequests?: boolean };
}

const newer = (w: World): void => {
  w.publish("1.0.0");
  w.publish(NEWER);
};
const newerOldYanked = (w: World): void => {
  w.publish("1.0.0", { yanked: "leaks secrets" });
  w.publish(NEWER);
};
const one = (w: World): void => {
  w.publish("1.0.0");
};
const ambiguous =
  (path: string, pattern: RegExp) =>
  (w: World): ReturnType<Row["attack"]> => ({
    spec: `${w.index.url}${path}`,
    code: "trust.policy",
    pattern,
    noRequests: true,
  });

const ROWS: Row[] = [
  {
    id: "bind-url-downgrade-to-older-listed-release",
    setup: newer,
    attack: (w) => {
      w.serveAs(zipOf("1.0.0"), zipOf(NEWER)); // 1.0.0 is listed too: only the binding refuses it
      return { spec: `${w.index.url}${zipOf(NEWER)}`, code: "trust.policy", pattern: /downgrade or substitution/ };
    },
  },
  {
    id: "bind-url-downgrade-to-yanked-release",
    setup: newerOldYanked,
    attack: (w) => {
      w.serveAs(zipOf("1.0.0"), zipOf(NEWER));
      return { spec: `${w.index.url}${zipOf(NEWER)}`, code: "trust.policy", pattern: /downgrade or substitution/ };
    },
  },
  {
    id: "bind-url-substitution-other-package",
    setup: (w) => {
      w.publish("1.0.0");
      w.publish("1.0.0", { name: GHOST });
    },
    attack: (w) => {
      w.serveAs(zipOf("1.0.0"), zipOf("1.0.0", GHOST));
      return { spec: `${w.index.url}${zipOf("1.0.0", GHOST)}`, code: "trust.policy", pattern: /names 'ghost-sink-1\.0\.0\.zip'/ };
    },
  },
  {
    id: "bind-url-file-name-case-differs",
    setup: one,
    attack: (w) => {
      const rel = `archives/${NAME}/DEMO-SINK-1.0.0.zip`;
      w.serveAs(zipOf("1.0.0"), rel);
      return { spec: `${w.index.url}${rel}`, code: "trust.policy", pattern: /downgrade or substitution/ };
    },
  },
  {
    id: "bind-url-downgrade-on-other-host",
    setup: newer,
    attack: (w) => {
      w.serveAs(zipOf("1.0.0"), zipOf(NEWER));
      return { spec: `${w.other.url}${zipOf(NEWER)}`, code: "trust.policy", pattern: /downgrade or substitution/ };
    },
  },
  {
    id: "bind-url-downgrade-without-index",
    setup: newer,
    attack: (w) => {
      w.serveAs(zipOf("1.0.0"), zipOf(NEWER));
      return { spec: `${w.index.url}${zipOf(NEWER)}`, code: "trust.policy", pattern: /downgrade or substitution/, noIndex: true };
    },
  },
  {
    id: "bind-url-names-yanked-release-unpinned",
    setup: newerOldYanked,
    attack: (w) => ({ spec: `${w.index.url}${zipOf("1.0.0")}`, code: "resolution", pattern: /is yanked: leaks secrets/ }),
  },
  {
    id: "bind-url-release-not-listed-by-index",
    setup: (w) => {
      w.publish("1.0.0");
      w.signUnlisted(HOSTILE);
    },
    attack: (w) => ({ spec: `${w.index.url}${zipOf(HOSTILE)}`, code: "resolution", pattern: /does not list that version \(listed: 1\.0\.0\)/ }),
  },
  {
    id: "bind-url-index-lists-other-hash",
    setup: (w) => {
      w.publish("1.0.0");
      // Other bytes for 1.0.0, validly signed (an earlier signing the index replaced).
      w.signUnlisted("1.0.0", { data: otherBytes("1.0.0") });
    },
    attack: (w) => ({ spec: `${w.index.url}${zipOf("1.0.0")}`, code: "trust.hash", pattern: /the index lists sha256/ }),
  },
  {
    id: "bind-url-into-index-unknown-package",
    setup: (w) => {
      w.publish("1.0.0");
      w.signUnlisted("1.0.0", { name: GHOST });
    },
    attack: (w) => ({ spec: `${w.index.url}${zipOf("1.0.0", GHOST)}`, code: "resolution", pattern: /does not list ghost-sink at all/ }),
  },
  {
    id: "bind-url-other-host-release-not-listed",
    setup: (w) => {
      w.publish("1.0.0");
      w.signUnlisted(HOSTILE);
    },
    attack: (w) => ({ spec: `${w.other.url}${zipOf(HOSTILE)}`, code: "resolution", pattern: /does not list that version/ }),
  },
  {
    id: "bind-url-other-host-yanked-unpinned",
    setup: newerOldYanked,
    attack: (w) => ({ spec: `${w.other.url}${zipOf("1.0.0")}`, code: "resolution", pattern: /is yanked/ }),
  },
  {
    id: "bind-url-encoded-slash",
    setup: one,
    attack: ambiguous(`archives/${NAME}%2F${NAME}-1.0.0.zip`, /encodes '\/'/),
  },
  {
    id: "bind-url-encoded-backslash",
    setup: one,
    attack: ambiguous(`archives/${NAME}%5C${NAME}-1.0.0.zip`, /encodes '\\\\'/),
  },
  {
    id: "bind-url-double-encoding",
    setup: one,
    attack: ambiguous(`archives/${NAME}/${NAME}-1.0.0%252Ezip`, /encodes '%'/),
  },
  {
    id: "bind-url-encoded-dot-segment",
    setup: one,
    attack: ambiguous(`archives/x/%2e%2E/${NAME}/${NAME}-1.0.0.zip`, /dot segment/),
  },
  {
    id: "bind-url-overlong-utf8",
    setup: one,
    attack: ambiguous(`archives/${NAME}/${NAME}-1.0.0%C0%AEzip`, /not valid UTF-8/),
  },
  {
    id: "bind-url-malformed-escape",
    setup: one,
    attack: ambiguous(`archives/${NAME}/${NAME}-1.0.0%2.zip`, /malformed percent/),
  },
  {
    id: "bind-url-encoded-nul",
    setup: one,
    attack: ambiguous(`archives/${NAME}/${NAME}-1.0.0.zip%00`, /encodes '\\x00'/),
  },
  {
    id: "bind-url-query-string",
    setup: one,
    attack: ambiguous(`${zipOf("1.0.0")}?file=${NAME}-1.0.0.zip`, /query string/),
  },
  {
    id: "bind-url-trailing-slash",
    setup: one,
    attack: ambiguous(`${zipOf("1.0.0")}/`, /not a plain archive name/),
  },
  {
    id: "bind-url-pin-only-ambiguous-name",
    setup: one,
    attack: (w) => ({
      spec: `${w.index.url}plain/x%2F${NAME}-1.0.0.zip#sha256=${sha256(w.pub.files.get(zipOf("1.0.0")) as Uint8Array)}`,
      code: "trust.policy",
      pattern: /encodes '\/'/,
      noRequests: true,
    }),
  },
];

describe("archive URLs are bound to their release (attacks)", () => {
  test("row ids are unique", () => {
    assert.equal(new Set(ROWS.map((r) => r.id)).size, ROWS.length);
  });

  for (const row of ROWS) {
    test(row.id, async () => {
      const w = new World();
      row.setup(w);
      await w.start();
      try {
        const a = row.attack(w);
        const loader = w.loader(a.noIndex !== true);
        const check = (err: unknown): boolean => {
          assert.ok(err instanceof ConnectorError, `expected a ConnectorError, got ${String(err)}`);
          assert.equal(err.code, a.code, err.message);
          assert.match(err.message, a.pattern);
          return true;
        };
        // 1. Through the loader: refused before the archive is requested.
        await assert.rejects(loader.fetchPackage(a.spec), check);
        if (a.noRequests === true) {
          assert.deepEqual(w.requests(), [], "an ambiguous URL must be refused before any request");
        }
        assert.deepEqual(
          w.requests().filter((p) => p.endsWith(".zip")),
          [],
          "no archive may be downloaded for a refused entry",
        );
        // 2. Into a registry: it stays as it was.
        const registry = new ConnectorRegistry({ loader: w.loader(a.noIndex !== true) });
        await assert.rejects(registry.loadPackage(a.spec), check);
        assert.deepEqual(registry.listConnectors(), []);
      } finally {
        await w.close();
      }
    });
  }
});

// -- controls: the same kinds of entry load when nothing is wrong ------------------------------

describe("archive URLs that name their release load (controls)", () => {
  const controls: [string, (w: World) => void, (w: World) => { spec: string; noIndex?: boolean }][] = [
    ["url-names-current-release", one, (w) => ({ spec: `${w.index.url}${zipOf("1.0.0")}` })],
    [
      "url-names-yanked-release-pinned-by-hash",
      newerOldYanked,
      (w) => ({ spec: `${w.index.url}${zipOf("1.0.0")}#sha256=${sha256(w.pub.files.get(zipOf("1.0.0")) as Uint8Array)}` }),
    ],
    [
      "url-other-host-package-not-in-index",
      (w) => {
        w.publish("1.0.0");
        w.signUnlisted("1.0.0", { name: GHOST });
      },
      (w) => ({ spec: `${w.other.url}${zipOf("1.0.0", GHOST)}` }),
    ],
    ["url-other-host-listed-release", one, (w) => ({ spec: `${w.other.url}${zipOf("1.0.0")}` })],
    [
      "url-percent-encoded-unreserved-character",
      one,
      (w) => ({ spec: `${w.index.url}archives/${NAME}/demo%2Dsink-1.0.0.zip` }),
    ],
    ["url-without-index", one, (w) => ({ spec: `${w.index.url}${zipOf("1.0.0")}`, noIndex: true })],
  ];

  for (const [id, setup, entry] of controls) {
    test(id, async () => {
      const w = new World();
      setup(w);
      await w.start();
      try {
        const e = entry(w);
        const registry = new ConnectorRegistry({ loader: w.loader(e.noIndex !== true) });
        const ids = await registry.loadPackage(e.spec);
        assert.ok(ids.includes(ID) || ids.includes("ghost.sink.v1"), JSON.stringify(ids));
        if (id === "url-names-yanked-release-pinned-by-hash") {
          assert.ok(
            w.warnings.includes(`${NAME} 1.0.0 is yanked: leaks secrets (used because pinned by hash)`),
            JSON.stringify(w.warnings),
          );
        }
      } finally {
        await w.close();
      }
    });
  }

  test("a pin-only URL (no .sig) names its decoded file name, version '?'", async () => {
    const w = new World();
    one(w);
    await w.start();
    try {
      const data = w.pub.files.get(zipOf("1.0.0")) as Uint8Array;
      w.pub.files.set(`plain/${NAME}-1.0.0.zip`, data);
      const resolved = await w.loader().resolve({
        kind: "url",
        url: `${w.index.url}plain/demo%2Dsink-1.0.0.zip`,
        sha256: sha256(data),
      });
      assert.deepEqual([resolved.name, resolved.version, resolved.release], [`${NAME}-1.0.0.zip`, "?", null]);
    } finally {
      await w.close();
    }
  });
});

// -- signed local zips (require_signatures) get the same binding ------------------------------

describe("signed local zips are bound to their release", () => {
  const SIG_CAP = 64 * 1024; // bytes: MAX_SIGNATURE_BYTES, as SECURITY.md documents

  /** `version`'s genuine zip and `.sig` copied to a local file named `fileName`. */
  function localCopy(w: World, version: string, fileName: string, sig?: Uint8Array): string {
    const dir = join(tempDir(), "local");
    mkdirSync(dir, { recursive: true });
    const path = join(dir, fileName);
    writeFileSync(path, w.pub.files.get(zipOf(version)) as Uint8Array);
    writeFileSync(`${path}.sig`, sig ?? (w.pub.files.get(`${zipOf(version)}.sig`) as Uint8Array));
    return path;
  }

  async function refused(path: string, w: World, code: string, pattern: RegExp): Promise<void> {
    const registry = new ConnectorRegistry({ loader: w.loader(true, true) });
    await assert.rejects(registry.loadPackage(path), (err: unknown) => {
      assert.ok(err instanceof ConnectorError, `expected a ConnectorError, got ${String(err)}`);
      assert.equal(err.code, code, err.message);
      assert.match(err.message, pattern);
      return true;
    });
    assert.deepEqual(registry.listConnectors(), []);
  }

  test("bind-local-signed-zip-renamed", async () => {
    const w = new World();
    newer(w);
    await w.start();
    try {
      // 1.0.0's bytes and signature under 1.1.0's name.
      const path = localCopy(w, "1.0.0", `${NAME}-${NEWER}.zip`);
      await refused(path, w, "trust.policy", /downgrade or substitution/);
    } finally {
      await w.close();
    }
  });

  test("len-local-sig-over-cap", async () => {
    const w = new World();
    one(w);
    await w.start();
    try {
      // The genuine envelope plus JSON whitespace to one byte over the cap: without the cap it
      // would parse and verify (a fixed size, so a raised cap makes this row fail).
      const genuine = w.pub.files.get(`${zipOf("1.0.0")}.sig`) as Uint8Array;
      const padded = new Uint8Array(SIG_CAP + 1).fill(0x20);
      padded.set(genuine);
      const path = localCopy(w, "1.0.0", `${NAME}-1.0.0.zip`, padded);
      await refused(path, w, "trust.policy", /signature cap/);
    } finally {
      await w.close();
    }
  });

  test("local-signed-zip-under-its-own-name (control)", async () => {
    const w = new World();
    newer(w);
    await w.start();
    try {
      const path = localCopy(w, "1.0.0", `${NAME}-1.0.0.zip`);
      const registry = new ConnectorRegistry({ loader: w.loader(true, true) });
      assert.deepEqual(await registry.loadPackage(path), [ID]);
    } finally {
      await w.close();
    }
  });
});
