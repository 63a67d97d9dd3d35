/**
 * Module hooks serving verified package bytes under the private `mmc-pkg:` scheme.
 *
 * Registered once by the importer with `module.register`; runs on Node's hooks thread. The
 * importer sends each package's verified files over a MessagePort before importing it, so
 * modules are compiled from those exact bytes and never re-read from disk.
 *
 * URLs are `mmc-pkg://<sha256>/<path>`. Inside a package a module may import its own modules
 * by relative specifier and Node built-ins (`node:…`); anything else — another package's
 * modules, `file:` URLs, bare npm specifiers — is refused, so one package cannot reach into
 * another or into the host's node_modules.
 */

import { isBuiltin } from "node:module";
import type { MessagePort } from "node:worker_threads";

const PROTOCOL = "mmc-pkg:";
const packages = new Map<string, Map<string, Uint8Array>>();

interface PublishMessage {
  id: number;
  digest: string;
  files: [string, Uint8Array][];
}

interface ResolveContext {
  parentURL?: string | undefined;
}

interface ResolveResult {
  url: string;
  format?: string | null | undefined;
  shortCircuit?: boolean | undefined;
}

interface LoadResult {
  format: string;
  source?: Uint8Array | string | undefined;
  shortCircuit?: boolean | undefined;
}

type NextResolve = (specifier: string, context?: ResolveContext) => Promise<ResolveResult>;
type NextLoad = (url: string, context?: object) => Promise<LoadResult>;

/** Receive packages from the importer. */
export function initialize(data: { port: MessagePort }): void {
  data.port.on("message", (msg: PublishMessage) => {
    packages.set(msg.digest, new Map(msg.files));
    data.port.postMessage({ ack: msg.id });
  });
  data.port.unref();
}

function locate(url: URL): { digest: string; path: string } {
  if (url.search !== "" || url.hash !== "") {
    throw new Error(`${url.href}: package module URLs take no query or fragment`);
  }
  return { digest: url.host, path: decodeURIComponent(url.pathname.replace(/^\//, "")) };
}

/** Resolve package-internal specifiers; refuse escapes from a package. */
export async function resolve(
  specifier: string,
  context: ResolveContext,
  nextResolve: NextResolve,
): Promise<ResolveResult> {
  const parent = context.parentURL;
  if (parent?.startsWith(`${PROTOCOL}//`)) {
    if (specifier.startsWith("node:") || isBuiltin(specifier)) {
      return nextResolve(specifier, context);
    }
    const relative = /^\.{0,2}\//.test(specifier);
    const target = relative ? new URL(specifier, parent) : null;
    const from = new URL(parent);
    if (target === null || target.protocol !== PROTOCOL || target.host !== from.host) {
      throw new Error(
        `${parent} imports '${specifier}': package code may import only its own modules (by relative path) and node: built-ins`,
      );
    }
    const { digest, path } = locate(target);
    if (!packages.get(digest)?.has(path)) {
      throw new Error(`${parent} imports '${specifier}': the package has no module '${path}'`);
    }
    return { url: target.href, format: "module", shortCircuit: true };
  }
  if (specifier.startsWith(`${PROTOCOL}//`)) {
    return { url: specifier, format: "module", shortCircuit: true };
  }
  return nextResolve(specifier, context);
}

/** Serve package modules from the verified in-memory bytes. */
export async function load(url: string, context: object, nextLoad: NextLoad): Promise<LoadResult> {
  if (!url.startsWith(`${PROTOCOL}//`)) {
    return nextLoad(url, context);
  }
  const { digest, path } = locate(new URL(url));
  const source = packages.get(digest)?.get(path);
  if (source === undefined) {
    throw new Error(`${url}: no such module in a loaded package`);
  }
  if (!/\.m?js$/.test(path)) {
    throw new Error(`${url}: only ES modules (.mjs, .js) can be imported from a package`);
  }
  let text: string;
  try {
    // Handed back as text: typed arrays do not survive the hooks thread's reply on Node 20.
    text = new TextDecoder("utf-8", { fatal: true }).decode(source);
  } catch {
    throw new Error(`${url}: module source is not UTF-8`);
  }
  return { format: "module", source: text, shortCircuit: true };
}
