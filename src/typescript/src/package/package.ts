/** A connector package read from a zip or a directory: files, manifest, digest (as `package.py`). */

import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";

import { describe, PackageError } from "../errors.js";
import { sha256Hex } from "../trust/keys.js";
import { type ArchiveLimits, DEFAULT_LIMITS, type PackageFiles, readDirectory, readZip } from "./archive.js";
import { MANIFEST_NAME, type Manifest, ManifestError, parseManifest } from "./manifest.js";

export const MAX_ARCHIVE_BYTES = 256 * 1024 * 1024; // bytes; a local zip larger is refused

/** A read, structurally checked package (not yet imported). */
export interface Package {
  readonly manifest: Manifest;
  readonly files: PackageFiles;
  /** Archive sha256 for zips; {@link treeDigest} for directories. */
  readonly sha256: string;
  readonly length: number;
  readonly source: string;
  readonly isArchive: boolean;
}

/** A stable sha256 over a directory package's sorted paths and contents (as Python's). */
export function treeDigest(files: PackageFiles): string {
  const h = createHash("sha256");
  for (const name of [...files.keys()].sort()) {
    const content = files.get(name) as Uint8Array;
    h.update(`${[...name].length}:${name}:${content.length}:`, "utf8");
    h.update(content);
  }
  return h.digest("hex");
}

function manifestOf(files: PackageFiles, source: string): Manifest {
  const where = `${source}!/${MANIFEST_NAME}`;
  const manifest = parseManifest(files.get(MANIFEST_NAME) as Uint8Array, where);
  manifest.connectors.forEach((c, i) => {
    // Checked when the package is read, as in Python: a missing module is a bad manifest.
    if (c.node !== null && !files.has(c.node.module)) {
      throw new ManifestError(
        `${where}: field 'connectors[${i}].node.module': '${c.node.module}' is not a file of the package`,
      );
    }
  });
  return manifest;
}

/**
 * Build a package from archive bytes (already verified when they came from an index).
 *
 * @throws PackageError `package.archive` or `package.manifest`.
 */
export async function packageFromBytes(
  data: Uint8Array,
  source: string,
  limits: ArchiveLimits = DEFAULT_LIMITS,
): Promise<Package> {
  const files = await readZip(data, source, limits);
  return {
    manifest: manifestOf(files, source),
    files,
    sha256: sha256Hex(data),
    length: data.length,
    source,
    isArchive: true,
  };
}

/**
 * Read a package directory or `.zip` file from local disk.
 *
 * @throws PackageError `package` (missing, unreadable, neither directory nor zip),
 *   `package.archive`, `package.manifest`.
 */
export async function openLocalPackage(
  path: string,
  limits: ArchiveLimits = DEFAULT_LIMITS,
): Promise<Package> {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    throw new PackageError("package", `${path}: no such file or directory`);
  }
  if (st.isDirectory()) {
    const files = readDirectory(path, limits);
    let size = 0;
    for (const v of files.values()) {
      size += v.length;
    }
    return {
      manifest: manifestOf(files, path),
      files,
      sha256: treeDigest(files),
      length: size,
      source: path,
      isArchive: false,
    };
  }
  if (!path.toLowerCase().endsWith(".zip")) {
    throw new PackageError("package", `${path}: a package is a directory or a .zip file`);
  }
  if (st.size > MAX_ARCHIVE_BYTES) {
    throw new PackageError("package.archive", `${path}: over the ${MAX_ARCHIVE_BYTES}-byte archive cap`);
  }
  let data: Uint8Array;
  try {
    data = readFileSync(path);
  } catch (err) {
    throw new PackageError("package", `${path}: cannot read: ${describe(err)}`);
  }
  return packageFromBytes(data, path, limits);
}
