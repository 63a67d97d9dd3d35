// One record of the event log; imported relatively by event-log.mjs (a package's modules
// import each other by relative specifier, never by a bare npm name).

/**
 * @param {number} seq Position in the log, from 1.
 * @param {string} kind "event", "log", "flush" or "trace".
 * @param {unknown} data What the connector was given.
 */
export function record(seq, kind, data) {
  return Object.freeze({ seq, kind, data });
}
