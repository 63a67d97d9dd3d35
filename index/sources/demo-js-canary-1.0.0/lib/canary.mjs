// The canary's connector: a valid observability connector that does nothing.
import { MARKED } from "./marker.mjs";

export class Canary {
  static connectorId = "demo.js-canary.v1";
  static description = "No-op observability connector (security tests only)";

  constructor() {
    this.marked = MARKED;
  }

  emit() {}

  log() {}

  flush() {}

  trace() {}
}
