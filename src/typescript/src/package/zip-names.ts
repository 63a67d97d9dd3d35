/**
 * Entry-name rules shared by the zip and directory readers (pure: no I/O).
 *
 * A name is refused when two tools could read it two ways (raw bytes vs. a Unicode-path
 * extra field, CP437 vs. UTF-8, NFC vs. NFD, case-folding), when it escapes the package
 * (traversal, absolute, drive letters), when Windows cannot represent it (reserved
 * characters, device names, trailing dots), when it hides characters (control, format,
 * private-use), or when it holds build leftovers or native code that the verified-bytes
 * importer could never run safely (.pyc, __pycache__, .git, shared libraries).
 * The list is ERROR-CODES.md's `package.archive` rules; the Python reader applies the same.
 */

import { PackageError } from "../errors.js";

/** The archive or directory is malformed or holds an unsafe entry. Code `package.archive`. */
export class ArchiveError extends PackageError {
  constructor(message: string, hint?: string) {
    super("package.archive", message, { hint });
  }
}

export const MAX_NAME_BYTES = 1024; // bytes of one entry name (UTF-8)
export const MAX_SEGMENT_BYTES = 255; // bytes of one path segment (most file systems' limit)
const UTF8_FLAG = 0x800; // general-purpose bit 11: the name is UTF-8
/** Extra fields that carry a second spelling of the name or comment (Info-ZIP). */
export const NAME_EXTRA_FIELDS: ReadonlySet<number> = new Set([0x7075, 0x6375]);
const HIDDEN_CHARS_RE = /[\p{Cc}\p{Cf}\p{Co}]/u;
const WINDOWS_RESERVED_RE = /[<>:"|?*]/;
const DEVICE_RE = /^(?:con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)$/i;
/** Directories that hold build leftovers or VCS data, never package code. */
export const FORBIDDEN_DIRS: ReadonlySet<string> = new Set([
  "__pycache__",
  ".git",
  ".hg",
  ".svn",
  ".mypy_cache",
  ".pytest_cache",
]);
const FORBIDDEN_FILE_RE = /\.(?:pyc|pyo|pyd|so|dll|dylib|sl|pth|node|exe)$|\.so\.[0-9.]+$/i;
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Python's `str.casefold()` for the scripts package names use (ß → ss, final sigma …). */
export function casefold(text: string): string {
  return text.toUpperCase().toLowerCase();
}

/**
 * Check a decoded entry name; return it without a trailing `/`.
 *
 * @param source Names the package in messages.
 * @throws ArchiveError (`package.archive`) Naming the rule the name breaks.
 */
export function checkName(name: string, source: string): string {
  const where = `${source}: entry ${JSON.stringify(name).slice(0, 200)}`;
  if (name.length === 0) {
    throw new ArchiveError(`${where}: empty entry name`);
  }
  if (Buffer.byteLength(name, "utf8") > MAX_NAME_BYTES) {
    throw new ArchiveError(`${where}: name longer than ${MAX_NAME_BYTES} bytes`);
  }
  if (name.includes("\\")) {
    throw new ArchiveError(`${where}: backslash in entry name (path separator on Windows)`);
  }
  if (HIDDEN_CHARS_RE.test(name)) {
    throw new ArchiveError(`${where}: control, format or private-use character in entry name`);
  }
  if (name.startsWith("/")) {
    throw new ArchiveError(`${where}: absolute path`);
  }
  if (/^[A-Za-z]:/.test(name)) {
    throw new ArchiveError(`${where}: drive-letter path`);
  }
  const trimmed = name.endsWith("/") ? name.slice(0, -1) : name;
  const parts = trimmed.split("/");
  for (const part of parts) {
    if (part === "" || part === "." || part === "..") {
      throw new ArchiveError(`${where}: path segment '${part}' is not allowed (traversal)`);
    }
    if (part.normalize("NFC") !== part) {
      throw new ArchiveError(`${where}: name is not in Unicode NFC form`);
    }
    if (Buffer.byteLength(part, "utf8") > MAX_SEGMENT_BYTES) {
      throw new ArchiveError(`${where}: path segment longer than ${MAX_SEGMENT_BYTES} bytes`);
    }
    if (WINDOWS_RESERVED_RE.test(part)) {
      throw new ArchiveError(`${where}: character reserved on Windows (<>:"|?*) in entry name`);
    }
    if (part.endsWith(".") || part.endsWith(" ")) {
      throw new ArchiveError(`${where}: segment ends with '.' or ' ' (Windows drops it)`);
    }
    // CON, NUL.txt, com1.tar.gz … open a device on Windows whatever the extension.
    const stem = part.split(".", 1)[0]?.trimEnd() ?? "";
    if (DEVICE_RE.test(stem)) {
      throw new ArchiveError(`${where}: '${part}' is a Windows device name`);
    }
  }
  for (const dir of name.endsWith("/") ? parts : parts.slice(0, -1)) {
    if (FORBIDDEN_DIRS.has(casefold(dir))) {
      throw new ArchiveError(`${where}: '${dir}' directories are not allowed in a package`);
    }
  }
  const last = parts[parts.length - 1] ?? "";
  if (!name.endsWith("/") && FORBIDDEN_FILE_RE.test(last)) {
    throw new ArchiveError(
      `${where}: compiled or native files (.pyc, .pyo, .pyd, .so, .dll, .dylib, .sl, .node, .exe) or a .pth start-up file are not allowed in a package`,
    );
  }
  if (!name.endsWith("/") && FORBIDDEN_DIRS.has(casefold(last))) {
    throw new ArchiveError(`${where}: '${last}' is not allowed in a package`);
  }
  return trimmed;
}

/** The raw facts of one zip entry that its name is judged by. */
export interface RawName {
  /** The name bytes as stored in the central directory. */
  readonly bytes: Uint8Array;
  /** General-purpose flag bits. */
  readonly flags: number;
  /** IDs of the entry's extra fields (central directory). */
  readonly extraIds: readonly number[];
}

/**
 * Decode and check a raw zip entry name.
 *
 * @returns The name without a trailing `/`, and whether it names a directory.
 * @throws ArchiveError (`package.archive`) NUL byte, a Unicode-path or Unicode-comment extra
 *   field (0x7075/0x6375), non-ASCII bytes without the UTF-8 flag, invalid UTF-8, or any
 *   rule of {@link checkName}.
 */
export function checkRawName(raw: RawName, source: string): { name: string; isDir: boolean } {
  const shown = Buffer.from(raw.bytes).toString("latin1");
  const where = `${source}: entry ${JSON.stringify(shown).slice(0, 200)}`;
  if (raw.bytes.length === 0) {
    throw new ArchiveError(`${where}: empty entry name`);
  }
  if (raw.bytes.includes(0)) {
    throw new ArchiveError(`${where}: NUL byte in entry name (readers disagree where it ends)`);
  }
  const extra = raw.extraIds.find((id) => NAME_EXTRA_FIELDS.has(id));
  if (extra !== undefined) {
    throw new ArchiveError(
      `${where}: Info-ZIP Unicode extra field 0x${extra.toString(16)} gives the entry a second name`,
    );
  }
  const ascii = raw.bytes.every((b) => b < 0x80);
  if (!ascii && (raw.flags & UTF8_FLAG) === 0) {
    throw new ArchiveError(
      `${where}: non-ASCII name without the UTF-8 flag (readers decode it as CP437 or UTF-8)`,
    );
  }
  let name: string;
  try {
    name = utf8.decode(raw.bytes);
  } catch {
    throw new ArchiveError(`${where}: name is not valid UTF-8`);
  }
  return { name: checkName(name, source), isDir: name.endsWith("/") };
}
