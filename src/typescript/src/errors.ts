/**
 * The one error tree of the TypeScript client, mirroring `modelmesh_connectors.errors`.
 *
 * Every failure the public API reports is a {@link ConnectorError} carrying a stable,
 * machine-readable `code` (listed in ERROR-CODES.md), a `message` saying what was expected
 * and what was seen, and an optional `hint`. Split by where the failure comes from:
 *
 * ```
 * ConnectorError                    base; code, message, hint, cause
 * ├── InvalidInput                  a bad string handed to a parser (input.*)
 * ├── TrustError                    signed data is not trustworthy (trust.*)
 * ├── DownloadError                 the network failed (download.*)
 * ├── CacheError                    the local cache or state dir cannot be used (cache.*)
 * ├── ResolutionError               the request cannot be met by the index (resolution.*)
 * ├── PackageError                  a package archive, manifest or its code is bad (package.*)
 * ├── RegistryError                 registry misuse: duplicate, unknown, wrong type (registry.*)
 * └── ConfigError                   the connectors configuration is invalid (config)
 * ```
 *
 * The codes are the Python client's (`code` on each class of `modelmesh_connectors.errors`);
 * `tests/unit/test_error_codes.py` checks that this list equals the Python list. A code
 * extends its parent's (`trust` → `trust.rollback`): match on a prefix to catch a family.
 * Calling the API in the wrong order is a programming error ({@link UsageError}), not a
 * `ConnectorError`, as in Python (`RuntimeError`).
 *
 * Foreign errors (node:crypto, node:http, yauzl, yaml) never escape unwrapped: they are
 * attached as `cause`.
 */

export const ERROR_CODES = [
  "error",
  "input",
  "input.json",
  "input.connector-id",
  "input.connector-type",
  "input.package-name",
  "input.package-spec",
  "input.key",
  "input.key.file",
  "input.key-reference",
  "trust",
  "trust.signature",
  "trust.metadata",
  "trust.expired",
  "trust.rollback",
  "trust.rollback.fork",
  "trust.root-rotation",
  "trust.hash",
  "trust.length",
  "trust.policy",
  "download",
  "download.not-found",
  "download.unreachable",
  "download.timeout",
  "cache",
  "cache.lock-timeout",
  "resolution",
  "publish",
  "publish.signer",
  "publish.conflict",
  "publish.storage",
  "package",
  "package.archive",
  "package.archive.format",
  "package.archive.name",
  "package.archive.forbidden",
  "package.archive.collision",
  "package.archive.manifest-placement",
  "package.archive.limit",
  "package.manifest",
  "package.no-entry-point",
  "package.import",
  "registry",
  "registry.duplicate",
  "registry.type",
  "registry.unknown",
  "registry.frozen",
  "registry.tampered",
  "config",
] as const;

/** A stable machine-readable error code (see ERROR-CODES.md). */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Options every error constructor accepts. */
export interface ErrorOptions {
  /** An action the user can take. */
  hint?: string | undefined;
  /** The underlying (often foreign) error. */
  cause?: unknown;
}

/** Base of every error raised by the client. */
export class ConnectorError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
    this.name = new.target.name;
  }
}

/** An invalid string or value handed to a parser (ID, requirement, JSON text). */
export class InvalidInput extends ConnectorError {}
/** Signed data failed verification; nothing from it may be used. */
export class TrustError extends ConnectorError {}
/** A URL could not be fetched. */
export class DownloadError extends ConnectorError {}
/** The local cache or state directory cannot be read or written. */
export class CacheError extends ConnectorError {}
/** No published version satisfies the request. */
export class ResolutionError extends ConnectorError {}
/** A connector package (zip or directory) is unusable. */
export class PackageError extends ConnectorError {}
/** The registry was asked to do something it cannot. */
export class RegistryError extends ConnectorError {}
/** The connectors configuration is invalid. */
export class ConfigError extends ConnectorError {}
/** The API was called in the wrong order: a programming error with no code (Python: RuntimeError). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The message of any thrown value, for embedding a foreign error in one of ours. */
export function describe(err: unknown): string {
  if (err instanceof Error) {
    return err.message;
  }
  return String(err);
}
