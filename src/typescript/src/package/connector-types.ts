/**
 * The six connector types and how an implementation is matched to one (as
 * `connector_types.py`).
 *
 * There is no ModelMesh host package on npm, so the interfaces are checked structurally:
 * each type lists the methods of its ModelMesh interface (the abstract methods of
 * `modelmesh.interfaces.*`, with their Python names), and an implementation matches when
 * its prototype chain has every one of them as a function.
 */

import { InvalidInput, RegistryError } from "../errors.js";

/** The six kinds of ModelMesh connector. */
export enum ConnectorType {
  PROVIDER = "provider",
  ROTATION = "rotation",
  SECRET_STORE = "secret_store",
  STORAGE = "storage",
  OBSERVABILITY = "observability",
  DISCOVERY = "discovery",
}

/** What the registry knows about one connector (the Python API's fields, exactly). */
export interface ConnectorInfo {
  id: string;
  connector_type: ConnectorType;
  version: string;
  description: string;
}

/**
 * Methods of each type's interface, from `modelmesh.interfaces` (modelmesh-lite 0.1).
 * A type with several lists (rotation) matches when any one list is complete.
 */
export const INTERFACE_METHODS: Readonly<Record<ConnectorType, readonly (readonly string[])[]>> = {
  // ProviderConnector
  [ConnectorType.PROVIDER]: [
    [
      "complete",
      "stream",
      "get_capabilities",
      "supports",
      "list_models",
      "get_model_info",
      "check_quota",
      "get_rate_limits",
      "get_pricing",
      "report_usage",
      "classify_error",
    ],
  ],
  // DeactivationPolicy, RecoveryPolicy, SelectionStrategy
  [ConnectorType.ROTATION]: [
    ["should_deactivate", "get_reason"],
    ["should_recover", "get_recovery_schedule"],
    ["select", "score"],
  ],
  // SecretStoreConnector (SecretResolution)
  [ConnectorType.SECRET_STORE]: [["get"]],
  // StorageConnector (Persistence, Inventory, StatQuery)
  [ConnectorType.STORAGE]: [["load", "save", "list", "delete", "stat", "exists"]],
  // ObservabilityConnector (Events, Logging, Statistics, Tracing)
  [ConnectorType.OBSERVABILITY]: [["emit", "log", "flush", "trace"]],
  // DiscoveryConnector (RegistrySync, HealthMonitoring)
  [ConnectorType.DISCOVERY]: [["sync", "get_sync_status", "probe", "get_health_report"]],
};

/** A rotation bundle exposes the three rotation components instead (upstream's policies). */
const ROTATION_BUNDLE = ["deactivation", "recovery", "selection"] as const;

/**
 * Accept a {@link ConnectorType} or its string value.
 *
 * @throws InvalidInput (`input.connector-type`) Listing the valid values.
 */
export function parseConnectorType(value: unknown): ConnectorType {
  for (const member of Object.values(ConnectorType)) {
    if (value === member) {
      return member;
    }
  }
  const valid = Object.values(ConnectorType).join(", ");
  throw new InvalidInput(
    "input.connector-type",
    `unknown connector type ${JSON.stringify(value) ?? String(value)}; valid types: ${valid}`,
  );
}

function target(implementation: unknown): object | null {
  if (typeof implementation === "function") {
    return (implementation as { prototype?: unknown }).prototype as object | null;
  }
  if (typeof implementation === "object" && implementation !== null) {
    return implementation;
  }
  return null;
}

function hasMethod(obj: object, name: string): boolean {
  return typeof (obj as Record<string, unknown>)[name] === "function";
}

function hasMember(implementation: unknown, obj: object, name: string): boolean {
  return name in obj || (typeof implementation === "function" && name in implementation);
}

function matches(implementation: unknown, kind: ConnectorType): boolean {
  const obj = target(implementation);
  if (obj === null) {
    return false;
  }
  if (INTERFACE_METHODS[kind].some((names) => names.every((n) => hasMethod(obj, n)))) {
    return true;
  }
  return (
    kind === ConnectorType.ROTATION &&
    ROTATION_BUNDLE.every((n) => hasMember(implementation, obj, n))
  );
}

function label(implementation: unknown): string {
  if (typeof implementation === "function" && implementation.name) {
    return implementation.name;
  }
  return typeof implementation === "object" && implementation !== null
    ? `instance of ${implementation.constructor?.name ?? "Object"}`
    : typeof implementation;
}

/**
 * Work out the connector type from the methods an implementation has.
 *
 * @throws RegistryError (`registry.type`) No type, or more than one, matches.
 */
export function classify(implementation: unknown): ConnectorType {
  const found = Object.values(ConnectorType).filter((k) => matches(implementation, k));
  if (found.length === 1) {
    return found[0] as ConnectorType;
  }
  if (found.length === 0) {
    throw new RegistryError(
      "registry.type",
      `cannot tell the connector type of ${label(implementation)}: it has the methods of no ModelMesh connector interface`,
      { hint: "implement every method of one interface, or pass connectorType explicitly" },
    );
  }
  throw new RegistryError(
    "registry.type",
    `${label(implementation)} matches several connector types (${found.join(", ")}); pass connectorType explicitly`,
  );
}

/**
 * Check that an implementation has every method of `kind`'s interface.
 *
 * @throws RegistryError (`registry.type`) Naming the missing methods.
 */
export function checkImplements(implementation: unknown, kind: ConnectorType, what: string): void {
  if (matches(implementation, kind)) {
    return;
  }
  const obj = target(implementation);
  const lists = INTERFACE_METHODS[kind];
  const missing =
    obj === null
      ? (lists[0] ?? [])
      : (lists
          .map((names) => names.filter((n) => !hasMethod(obj, n)))
          .sort((a, b) => a.length - b.length)[0] ?? []);
  const extra = kind === ConnectorType.ROTATION ? " (or a bundle with deactivation/recovery/selection)" : "";
  throw new RegistryError(
    "registry.type",
    `${what}: declared type '${kind}' but ${label(implementation)} does not implement it${extra}: missing method(s) ${missing.join(", ")}`,
  );
}
