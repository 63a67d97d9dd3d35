/**
 * Safe reading of package archives (zip, through yauzl) and directories into memory.
 *
 * Every entry is checked before a byte of it is used, and sizes are enforced on the bytes
 * actually decompressed, never on what a header claims. The result is an in-memory map from
 * relative POSIX path to bytes: the importer runs exactly these bytes.
 */

import { lstatSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import yauzl from "yauzl";

import { describe } from "../errors.js";
import { MANIFEST_NAME } from "./manifest.js";
import { ArchiveError, casefold, checkName, checkRawName, FORBIDDEN_DIRS } from "./zip-names.js";

/** Caps applied while reading a package. */
export interface ArchiveLimits {
  /** Most entries (files and directories) in one package. */
  readonly maxEntries: number;
  /** Most bytes one file may decompress to. */
  readonly maxFileSize: number;
  /** Most bytes all files together may decompress to. */
  readonly maxTotalSize: number;
}

export const DEFAULT_LIMITS: ArchiveLimits = {
  maxEntries: 2_000, // entries
  maxFileSize: 16 * 1024 * 1024, // bytes
  maxTotalSize: 64 * 1024 * 1024, // bytes
};

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const UNIX = 3; // "version made by" host system: Unix
const ENCRYPTION_FLAGS = 0x1 | 0x40 | 0x2000; // traditional, strong, central-directory encryption
const ALLOWED_METHODS = new Set([0, 8]); // stored, deflate
const LOCAL_HEADER_SIG = 0x04034b50;

/** The verified files of one package: relative POSIX path → bytes. */
export type PackageFiles = ReadonlyMap<string, Uint8Array>;

type Kind = "file" | "dir";

function entryKind(entry: yauzl.Entry, name: string, isDir: boolean, source: string): Kind {
  const mode = (entry.externalFileAttributes >>> 16) & 0xffff;
  // Unix attributes with a file-type field (many writers set permission bits only).
  if (entry.versionMadeBy >> 8 === UNIX && (mode & S_IFMT) !== 0) {
    const fmt = mode & S_IFMT;
    if (fmt === S_IFLNK) {
      throw new ArchiveError(`${source}: entry '${name}' is a symlink`);
    }
    if (fmt === S_IFDIR) {
      return "dir";
    }
    if (fmt !== S_IFREG) {
      throw new ArchiveError(`${source}: entry '${name}' is not a regular file`);
    }
  }
  return isDir ? "dir" : "file";
}

function checkStructure(kinds: ReadonlyMap<string, Kind>, source: string): void {
  for (const name of kinds.keys()) {
    const parts = name.split("/");
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/");
      if (kinds.get(parent) === "file") {
        throw new ArchiveError(
          `${source}: entry '${parent}' is a file but '${name}' uses it as a directory`,
        );
      }
    }
  }
  // Exactly one manifest, at the root: a second one deeper down could be read by a tool
  // that looks for "the" manifest differently.
  const others = [...kinds.keys()]
    .filter(
      (n) =>
        n !== MANIFEST_NAME && casefold(n.split("/").pop() ?? "") === casefold(MANIFEST_NAME),
    )
    .sort();
  if (kinds.get(MANIFEST_NAME) !== "file") {
    if (others.length > 0) {
      throw new ArchiveError(
        `${source}: ${MANIFEST_NAME} found at '${others[0]}' but must be at the root`,
        "pack the directory that holds the manifest",
      );
    }
    throw new ArchiveError(`${source}: no ${MANIFEST_NAME} at the archive root`);
  }
  if (others.length > 0) {
    throw new ArchiveError(
      `${source}: a second manifest at '${others[0]}'; a package has exactly one, at the root`,
    );
  }
}

function openZip(data: Uint8Array): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(
      Buffer.from(data.buffer, data.byteOffset, data.byteLength),
      {
        lazyEntries: true,
        decodeStrings: false,
        validateEntrySizes: true,
        strictFileNames: false,
        autoClose: false,
      },
      (err, zip) => (err ? reject(err) : resolve(zip)),
    );
  });
}

function listEntries(zip: yauzl.ZipFile): Promise<yauzl.Entry[]> {
  return new Promise((resolve, reject) => {
    const out: yauzl.Entry[] = [];
    zip.on("entry", (entry: yauzl.Entry) => {
      out.push(entry);
      zip.readEntry();
    });
    zip.on("end", () => resolve(out));
    zip.on("error", reject);
    zip.readEntry();
  });
}

function readEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, cap: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (err, stream) => {
      if (err) {
        reject(err);
        return;
      }
      const chunks: Buffer[] = [];
      let total = 0;
      let crc = 0;
      stream.on("data", (chunk: Buffer) => {
        total += chunk.length;
        if (total > cap) {
          stream.destroy(new RangeError(`decompresses past the cap of ${cap} bytes`));
          return;
        }
        crc = crc32(chunk, crc);
        chunks.push(chunk);
      });
      stream.on("error", reject);
      stream.on("end", () => {
        if (crc >>> 0 !== entry.crc32 >>> 0) {
          reject(new Error(`CRC-32 mismatch: header says ${entry.crc32}, data has ${crc >>> 0}`));
          return;
        }
        resolve(Buffer.concat(chunks));
      });
    });
  });
}

function checkLocalHeader(data: Uint8Array, entry: yauzl.Entry, source: string, name: string): void {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const at = entry.relativeOffsetOfLocalHeader;
  if (at + 30 > buf.length || buf.readUInt32LE(at) !== LOCAL_HEADER_SIG) {
    throw new ArchiveError(`${source}: entry '${name}' has no local file header`);
  }
  const nameLength = buf.readUInt16LE(at + 26);
  const local = buf.subarray(at + 30, at + 30 + nameLength);
  // Streaming unzip tools read the local name; the central directory must agree with it.
  if (!local.equals(entry.fileName as unknown as Buffer)) {
    throw new ArchiveError(
      `${source}: entry '${name}': local header names '${local.toString("latin1")}' instead`,
    );
  }
}

const END_SIG = 0x06054b50;
const END_LEN = 22; // bytes of the end-of-central-directory record without a comment
const CENTRAL_SIG = 0x02014b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;

/**
 * FORMAT.md §6 rule 12: one layout only. The entries lie back to back from offset 0 in
 * central-directory order, the central directory follows the last one directly, and the end
 * record is the last 22 bytes (no archive comment, no trailing data); no zip64, no entry
 * comments, a single disk. Anything else could be read differently by another reader.
 */
function checkLayout(buf: Buffer, entries: readonly yauzl.Entry[], source: string): void {
  const fail = (problem: string): ArchiveError => new ArchiveError(`${source}: ${problem}`);
  const end = buf.length - END_LEN;
  if (end < 0 || buf.readUInt32LE(end) !== END_SIG) {
    throw fail("the end record is not the last 22 bytes (an archive comment or trailing data)");
  }
  if (buf.readUInt16LE(end + 4) !== 0 || buf.readUInt16LE(end + 6) !== 0) {
    throw fail("a multi-disk archive");
  }
  const count = buf.readUInt16LE(end + 10);
  const cdSize = buf.readUInt32LE(end + 12);
  const cdOffset = buf.readUInt32LE(end + 16);
  if (count !== entries.length || buf.readUInt16LE(end + 8) !== count) {
    throw fail(`the end record counts ${count} entries, the central directory holds ${entries.length}`);
  }
  if (cdOffset + cdSize !== end || (end >= 20 && buf.readUInt32LE(end - 20) === ZIP64_LOCATOR_SIG)) {
    throw fail("the central directory does not end where the end record starts (zip64 or a gap)");
  }
  let at = 0;
  let cd = cdOffset;
  for (const entry of entries) {
    if (cd + 46 > end || buf.readUInt32LE(cd) !== CENTRAL_SIG) {
      throw fail("the central directory is malformed");
    }
    cd += 46 + entry.fileNameLength + entry.extraFieldLength + entry.fileCommentLength;
    if (entry.fileCommentLength !== 0) {
      throw fail("an entry comment (readers disagree on what it is)");
    }
    if (entry.relativeOffsetOfLocalHeader !== at) {
      throw fail(`entry data is not back to back: expected a local header at ${at}, got ${entry.relativeOffsetOfLocalHeader}`);
    }
    if (at + 30 > cdOffset || buf.readUInt32LE(at) !== LOCAL_HEADER_SIG) {
      throw fail(`no local header at ${at}`);
    }
    if ((buf.readUInt16LE(at + 6) & 0x8) !== 0) {
      throw fail("a data descriptor (sizes after the data)");
    }
    at += 30 + buf.readUInt16LE(at + 26) + buf.readUInt16LE(at + 28) + entry.compressedSize;
  }
  if (at !== cdOffset || cd !== end) {
    throw fail(`data between the last entry and the central directory (${at} vs ${cdOffset})`);
  }
}

/**
 * Check every entry of a zip archive, then return its files.
 *
 * @param data The archive bytes (already hash-verified when they came from an index).
 * @param source Names the package in messages.
 * @throws ArchiveError (`package.archive`) Naming the offending entry.
 */
export async function readZip(
  data: Uint8Array,
  source: string,
  limits: ArchiveLimits = DEFAULT_LIMITS,
): Promise<PackageFiles> {
  let zip: yauzl.ZipFile;
  try {
    zip = await openZip(data);
  } catch (err) {
    throw new ArchiveError(`${source}: not a valid zip archive: ${describe(err)}`);
  }
  try {
    if (zip.entryCount > limits.maxEntries) {
      throw new ArchiveError(
        `${source}: ${zip.entryCount} entries, over the cap of ${limits.maxEntries}`,
      );
    }
    let entries: yauzl.Entry[];
    try {
      entries = await listEntries(zip);
    } catch (err) {
      throw new ArchiveError(`${source}: not a valid zip archive: ${describe(err)}`);
    }
    checkLayout(Buffer.from(data.buffer, data.byteOffset, data.byteLength), entries, source);
    const kinds = new Map<string, Kind>();
    const folded = new Map<string, string>();
    const names: string[] = [];
    for (const entry of entries) {
      const { name, isDir } = checkRawName(
        {
          bytes: entry.fileName as unknown as Uint8Array,
          flags: entry.generalPurposeBitFlag,
          extraIds: entry.extraFields.map((f) => f.id),
        },
        source,
      );
      const kind = entryKind(entry, name, isDir, source);
      if ((entry.generalPurposeBitFlag & ENCRYPTION_FLAGS) !== 0) {
        throw new ArchiveError(`${source}: entry '${name}' is encrypted`);
      }
      if (kind === "file" && !ALLOWED_METHODS.has(entry.compressionMethod)) {
        throw new ArchiveError(
          `${source}: entry '${name}' uses compression method ${entry.compressionMethod}; only stored and deflate are accepted`,
        );
      }
      if (kind === "dir" && entry.uncompressedSize !== 0) {
        throw new ArchiveError(`${source}: directory entry '${name}' carries data`);
      }
      if (kinds.has(name)) {
        throw new ArchiveError(`${source}: duplicate entry '${name}'`);
      }
      // Two entries that are one file on case-insensitive file systems.
      const key = casefold(name);
      const clash = folded.get(key);
      if (clash !== undefined) {
        throw new ArchiveError(
          `${source}: entries '${clash}' and '${name}' collide under case-folding`,
        );
      }
      checkLocalHeader(data, entry, source, name);
      kinds.set(name, kind);
      folded.set(key, name);
      names.push(name);
    }
    checkStructure(kinds, source);
    const files = new Map<string, Uint8Array>();
    let budget = limits.maxTotalSize;
    for (const [i, entry] of entries.entries()) {
      const name = names[i] as string;
      if (kinds.get(name) !== "file") {
        continue;
      }
      const cap = Math.min(limits.maxFileSize, budget);
      const which = cap === limits.maxFileSize ? "per-file" : "total";
      if (entry.uncompressedSize > cap) {
        throw new ArchiveError(
          `${source}: entry '${name}' declares ${entry.uncompressedSize} bytes, over the ${which} cap of ${cap} bytes`,
        );
      }
      let content: Uint8Array;
      try {
        content = await readEntry(zip, entry, cap);
      } catch (err) {
        // zlib errors, CRC mismatch, sizes that lie (yauzl's validateEntrySizes), bombs
        throw new ArchiveError(`${source}: entry '${name}' cannot be read: ${describe(err)}`);
      }
      budget -= content.length;
      files.set(name, content);
    }
    return files;
  } finally {
    zip.close();
  }
}

/**
 * Read a package directory into memory with the same rules as a zip. Symlinks and special
 * files are refused rather than followed; `__pycache__`-style directories and compiled
 * Python files are skipped (build leftovers of a working copy).
 *
 * @throws ArchiveError (`package.archive`) Naming the offending path.
 */
export function readDirectory(path: string, limits: ArchiveLimits = DEFAULT_LIMITS): PackageFiles {
  const source = path;
  const files = new Map<string, Uint8Array>();
  const kinds = new Map<string, Kind>();
  const folded = new Map<string, string>();
  let total = 0;
  const stack: [string, string][] = [[path, ""]];
  while (stack.length > 0) {
    const [dir, prefix] = stack.pop() as [string, string];
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch (err) {
      throw new ArchiveError(`${source}: cannot list ${dir}: ${describe(err)}`);
    }
    for (const entry of names) {
      const rel = prefix + entry;
      const full = join(dir, entry);
      const st = lstatSync(full);
      if (st.isSymbolicLink()) {
        throw new ArchiveError(`${source}: '${rel}' is a symlink`);
      }
      if (st.isDirectory()) {
        if (FORBIDDEN_DIRS.has(entry)) {
          continue;
        }
        checkName(`${rel}/`, source);
        kinds.set(rel, "dir");
        stack.push([full, `${rel}/`]);
        continue;
      }
      if (!st.isFile()) {
        throw new ArchiveError(`${source}: '${rel}' is not a regular file`);
      }
      if (/\.py[co]$/.test(entry)) {
        continue;
      }
      checkName(rel, source);
      const key = casefold(rel);
      if (folded.has(key)) {
        throw new ArchiveError(`${source}: '${folded.get(key)}' and '${rel}' collide under case-folding`);
      }
      folded.set(key, rel);
      if (kinds.size >= limits.maxEntries) {
        throw new ArchiveError(`${source}: more than ${limits.maxEntries} entries`);
      }
      if (st.size > limits.maxFileSize) {
        throw new ArchiveError(
          `${source}: '${rel}' is over the per-file cap of ${limits.maxFileSize} bytes`,
        );
      }
      const content = readFileSync(full);
      total += content.length;
      if (content.length > limits.maxFileSize || total > limits.maxTotalSize) {
        throw new ArchiveError(`${source}: files total over the cap of ${limits.maxTotalSize} bytes`);
      }
      kinds.set(rel, "file");
      files.set(rel, new Uint8Array(content));
    }
  }
  checkStructure(kinds, source);
  return files;
}
