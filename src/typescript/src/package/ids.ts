/** Connector IDs: `<namespace>.<name>.v<version>`, e.g. `acme.audit-log.v1` (as `ids.py`). */

import { InvalidInput } from "../errors.js";

const SEGMENT_RE = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const VERSION_RE = /^v([1-9][0-9]{0,8})$/; // at most 9 digits

/** A parsed connector ID. */
export interface ConnectorId {
  /** Owner segment (`acme`); publisher keys can be scoped to it. */
  readonly namespace: string;
  /** Connector name segment (`audit-log`). */
  readonly name: string;
  /** Interface version number (the 1 of `v1`). */
  readonly version: number;
}

function invalid(message: string): InvalidInput {
  return new InvalidInput("input.connector-id", message);
}

/**
 * Parse and validate a connector ID.
 *
 * @throws InvalidInput (`input.connector-id`) Saying which part is wrong and what was seen.
 */
export function parseConnectorId(value: unknown): ConnectorId {
  if (typeof value !== "string") {
    throw invalid(`connector ID must be a string, got ${typeof value}: ${String(value).slice(0, 80)}`);
  }
  const shown = JSON.stringify(value).slice(0, 82);
  const parts = value.split(".");
  if (parts.length !== 3) {
    throw invalid(
      `invalid connector ID ${shown}: expected '<namespace>.<name>.v<N>' such as 'acme.audit-log.v1', got ${parts.length} dot-separated part(s)`,
    );
  }
  if (value !== value.toLowerCase()) {
    throw invalid(`invalid connector ID ${shown}: must be lowercase`);
  }
  const [namespace, name, version] = parts as [string, string, string];
  for (const [label, segment] of [
    ["namespace", namespace],
    ["name", name],
  ] as const) {
    if (!SEGMENT_RE.test(segment)) {
      throw invalid(
        `invalid connector ID ${shown}: ${label} '${segment}' must be one or more [a-z0-9] runs joined by single '-'`,
      );
    }
  }
  const m = VERSION_RE.exec(version);
  if (m === null) {
    throw invalid(
      `invalid connector ID ${shown}: version '${version.slice(0, 20)}' must be 'v' followed by a positive integer of at most 9 digits without leading zeros (v1, v2, ...)`,
    );
  }
  return { namespace, name, version: Number(m[1]) };
}

/** The canonical string of a parsed ID. */
export function formatConnectorId(id: ConnectorId): string {
  return `${id.namespace}.${id.name}.v${id.version}`;
}
