/**
 * @modelmesh/connectors — the TypeScript twin of modelmesh-connectors.
 *
 * Data flows one way: bytes from outside → verified objects (trust/) → resolved choice and
 * cached bytes (client/) → imported code (package/) → registry. This module only re-exports
 * the public API.
 */

export { type ConnectorsConfig, readConfig } from "./client/config.js";
export { type FetchConfig, type Fetcher, HttpFetcher, type Sink } from "./client/fetch.js";
export { Loader, type LoaderOptions, type ResolvedArchive } from "./client/loader.js";
export { parsePackageSpec, parseRequirement, type PackageSpec } from "./client/requirements.js";
export { type Candidate, type Choice, choose } from "./client/resolve.js";
export * from "./errors.js";
export { ConnectorType, type ConnectorInfo, INTERFACE_METHODS } from "./package/connector-types.js";
export { parseConnectorId, type ConnectorId } from "./package/ids.js";
export { type Manifest, type ManifestConnector, type NodeEntry, parseManifest } from "./package/manifest.js";
export { openLocalPackage, type Package, packageFromBytes } from "./package/package.js";
export { ConnectorRegistry, type Origin, type RegisterOptions, type RegistryOptions } from "./registry.js";
export { type JsonValue, strictJson } from "./trust/strict-json.js";
export {
  DEFAULT_MAX_HISTORY_WALK,
  type HistoryReader,
  TrustedState,
  verifyHistoryLink,
} from "./trust/state.js";
