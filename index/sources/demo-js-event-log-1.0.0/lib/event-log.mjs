// The demo's connector: an observability connector that keeps what it is given, in order.
import { record } from "./format.mjs";

export class EventLog {
  static connectorId = "demo.js-event-log.v1";
  static description = "Keeps routing events, request logs, statistics flushes and traces in memory";

  /** @param {{limit?: number}} [config] At most `limit` records are kept (default 10000). */
  constructor(config = {}) {
    this.limit = config.limit ?? 10000;
    this.records = [];
    this.seq = 0;
  }

  #keep(kind, data) {
    this.seq += 1;
    this.records.push(record(this.seq, kind, data));
    if (this.records.length > this.limit) {
      this.records.shift();
    }
  }

  emit(event) {
    this.#keep("event", event);
  }

  log(entry) {
    this.#keep("log", entry);
  }

  flush(stats) {
    this.#keep("flush", stats);
  }

  trace(entry) {
    this.#keep("trace", entry);
  }
}
