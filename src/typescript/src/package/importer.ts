/**
 * Import a package's ES modules from its verified in-memory files (as `importer.py`).
 *
 * Each package is published to the module hooks (hooks.ts) under its content digest and
 * imported as `mmc-pkg://<sha256>/<module>`: two packages that both have `sink.mjs`, or two
 * versions of one package, never collide, and the code that runs is exactly the bytes that
 * were verified. Unlike Python's `sys.modules`, Node's module map cannot forget a module: a
 * failed load registers nothing, but its evaluated modules stay cached under their URL.
 */

import { register } from "node:module";
import { MessageChannel, type MessagePort } from "node:worker_threads";

import { describe, PackageError } from "../errors.js";
import type { PackageFiles } from "./archive.js";
import type { Manifest } from "./manifest.js";

export const PACKAGE_PROTOCOL = "mmc-pkg:";

let port: MessagePort | null = null;
let nextId = 1;
const pending = new Map<number, () => void>();
const published = new Set<string>();

function hooksPort(): MessagePort {
  if (port === null) {
    const channel = new MessageChannel();
    register(new URL("./hooks.js", import.meta.url), {
      data: { port: channel.port2 },
      transferList: [channel.port2],
    });
    channel.port1.on("message", (msg: { ack: number }) => {
      pending.get(msg.ack)?.();
      pending.delete(msg.ack);
      if (pending.size === 0) {
        channel.port1.unref();
      }
    });
    channel.port1.unref();
    port = channel.port1;
  }
  return port;
}

async function publish(digest: string, files: PackageFiles): Promise<void> {
  if (published.has(digest)) {
    return;
  }
  const p = hooksPort();
  const id = nextId++;
  const acked = new Promise<void>((resolve) => pending.set(id, resolve));
  p.ref(); // keep the process alive until the hooks thread has the files
  p.postMessage({ id, digest, files: [...files.entries()] });
  await acked;
  published.add(digest);
}

/** The URL a package module is imported under. */
export function moduleUrl(digest: string, path: string): string {
  return `${PACKAGE_PROTOCOL}//${digest}/${path.split("/").map(encodeURIComponent).join("/")}`;
}

/**
 * Import every connector's Node entry point; all or nothing.
 *
 * @param digest The archive sha256 (or directory tree digest) naming the package.
 * @returns Connector ID → the exported implementation.
 * @throws PackageError `package.no-entry-point` (a connector has no Node entry point) or
 *   `package.import` (a module fails to import, or the export is missing).
 */
export async function importPackage(
  manifest: Manifest,
  files: PackageFiles,
  digest: string,
): Promise<Map<string, unknown>> {
  const label = `${manifest.name} ${manifest.version}`;
  for (const c of manifest.connectors) {
    if (c.node === null) {
      throw new PackageError(
        "package.no-entry-point",
        `${label}: connector ${c.id} has no Node entry point (its manifest declares only the Python entry ${c.entry ?? "?"})`,
        { hint: "this package is Python-only; load it with the Python client, or ask its publisher for a 'node:' entry (MANIFEST-NODE.md)" },
      );
    }
    if (!files.has(c.node.module)) {
      throw new PackageError(
        "package.import",
        `${label}: connector ${c.id}: module '${c.node.module}' is not in the package`,
      );
    }
  }
  await publish(digest, files);
  const classes = new Map<string, unknown>();
  for (const c of manifest.connectors) {
    const node = c.node;
    if (node === null) {
      continue;
    }
    const where = `${label}: connector ${c.id} (${node.module}#${node.export})`;
    let mod: Record<string, unknown>;
    try {
      mod = (await import(moduleUrl(digest, node.module))) as Record<string, unknown>;
    } catch (err) {
      throw new PackageError("package.import", `${where}: importing raised ${describe(err)}`, {
        cause: err,
        hint: "inside a package, import its own modules relatively (import { X } from './sink.mjs')",
      });
    }
    if (!Object.hasOwn(mod, node.export)) {
      throw new PackageError("package.import", `${where}: module has no export '${node.export}'`);
    }
    classes.set(c.id, mod[node.export]);
  }
  return classes;
}
