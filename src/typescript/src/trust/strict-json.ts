/**
 * Strict JSON: the reader and the deterministic writer every index file uses (FORMAT.md §2).
 *
 * `JSON.parse` keeps the last of two duplicated keys, reads `1.5` and `1e3` as numbers and
 * silently rounds integers past 2^53-1; two parsers that disagree on one signed file are a
 * parser-differential attack. This reader refuses all of them, plus invalid UTF-8, a BOM,
 * NaN/Infinity and nesting deeper than {@link MAX_JSON_DEPTH}.
 *
 * Objects are returned as null-prototype records so a `__proto__` key is plain data.
 */

import { InvalidInput } from "../errors.js";

/** A parsed strict-JSON value. Numbers are always safe integers. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
/** A parsed JSON object (null prototype, insertion order kept). */
export interface JsonObject {
  [key: string]: JsonValue;
}

/** Deepest nesting of arrays and objects accepted (metadata nests fewer than 10 levels). */
export const MAX_JSON_DEPTH = 512;

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Bytes are not strict JSON. Code `input.json`. */
export class JsonFormatError extends InvalidInput {
  constructor(message: string) {
    super("input.json", message);
  }
}

class Parser {
  private pos = 0;

  constructor(private readonly text: string) {}

  fail(problem: string): JsonFormatError {
    return new JsonFormatError(`expected strict JSON, got ${problem} at offset ${this.pos}`);
  }

  parseDocument(): JsonValue {
    this.skipWs();
    const value = this.parseValue(0);
    this.skipWs();
    if (this.pos !== this.text.length) {
      throw this.fail("extra data after the value");
    }
    return value;
  }

  private skipWs(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      // Only the four JSON whitespace characters (Python's json agrees).
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) {
        this.pos++;
      } else {
        break;
      }
    }
  }

  private parseValue(depth: number): JsonValue {
    const c = this.text[this.pos];
    switch (c) {
      case "{":
        return this.parseObject(depth + 1);
      case "[":
        return this.parseArray(depth + 1);
      case '"':
        return this.parseString();
      case "t":
        return this.literal("true", true);
      case "f":
        return this.literal("false", false);
      case "n":
        return this.literal("null", null);
      case undefined:
        throw this.fail("end of input");
      default:
        if (c === "-" || (c >= "0" && c <= "9")) {
          return this.parseNumber();
        }
        if (c === "N" || c === "I") {
          throw this.fail("a non-standard constant (NaN or Infinity)");
        }
        throw this.fail(`unexpected character ${JSON.stringify(c)}`);
    }
  }

  private literal<T extends JsonValue>(word: string, value: T): T {
    if (this.text.startsWith(word, this.pos)) {
      this.pos += word.length;
      return value;
    }
    throw this.fail("an invalid literal");
  }

  private parseNumber(): number {
    const rest = this.text.slice(this.pos);
    if (rest.startsWith("-Infinity")) {
      throw this.fail("a non-standard constant (-Infinity)");
    }
    const m = /^-?(?:0|[1-9][0-9]*)/.exec(rest);
    if (m === null) {
      throw this.fail("an invalid number");
    }
    const after = rest[m[0].length];
    if (after === "." || after === "e" || after === "E") {
      throw this.fail("a floating-point number (the format uses integers only)");
    }
    const big = BigInt(m[0]);
    if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < -BigInt(Number.MAX_SAFE_INTEGER)) {
      throw this.fail(`an integer beyond ±(2^53-1): ${m[0].slice(0, 40)}`);
    }
    this.pos += m[0].length;
    const n = Number(big);
    return n === 0 ? 0 : n; // "-0" is the integer 0, as in Python
  }

  private parseString(): string {
    const t = this.text;
    this.pos++; // opening quote
    let out = "";
    let start = this.pos;
    for (;;) {
      if (this.pos >= t.length) {
        throw this.fail("an unterminated string");
      }
      const c = t.charCodeAt(this.pos);
      if (c === 0x22) {
        out += t.slice(start, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) {
        throw this.fail("a control character inside a string");
      }
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += t.slice(start, this.pos);
      const e = t[this.pos + 1];
      switch (e) {
        case '"':
        case "\\":
        case "/":
          out += e;
          break;
        case "b":
          out += "\b";
          break;
        case "f":
          out += "\f";
          break;
        case "n":
          out += "\n";
          break;
        case "r":
          out += "\r";
          break;
        case "t":
          out += "\t";
          break;
        case "u": {
          const hex = t.slice(this.pos + 2, this.pos + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) {
            throw this.fail("an invalid \\u escape");
          }
          out += String.fromCharCode(Number.parseInt(hex, 16));
          this.pos += 4;
          break;
        }
        default:
          throw this.fail("an invalid escape");
      }
      this.pos += 2;
      start = this.pos;
    }
  }

  private parseArray(depth: number): JsonValue[] {
    if (depth > MAX_JSON_DEPTH) {
      throw this.fail(`nesting deeper than ${MAX_JSON_DEPTH}`);
    }
    this.pos++;
    const out: JsonValue[] = [];
    this.skipWs();
    if (this.text[this.pos] === "]") {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skipWs();
      out.push(this.parseValue(depth));
      this.skipWs();
      const c = this.text[this.pos];
      if (c === ",") {
        this.pos++;
      } else if (c === "]") {
        this.pos++;
        return out;
      } else {
        throw this.fail("a missing ',' or ']' in an array");
      }
    }
  }

  private parseObject(depth: number): JsonObject {
    if (depth > MAX_JSON_DEPTH) {
      throw this.fail(`nesting deeper than ${MAX_JSON_DEPTH}`);
    }
    this.pos++;
    const out: JsonObject = Object.create(null) as JsonObject;
    this.skipWs();
    if (this.text[this.pos] === "}") {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skipWs();
      if (this.text[this.pos] !== '"') {
        throw this.fail("an object key that is not a string");
      }
      const key = this.parseString();
      // Two parsers may keep different copies of a duplicated key; refuse both.
      if (Object.hasOwn(out, key)) {
        throw this.fail(`duplicate key ${JSON.stringify(key).slice(0, 80)}`);
      }
      this.skipWs();
      if (this.text[this.pos] !== ":") {
        throw this.fail("a missing ':' in an object");
      }
      this.pos++;
      this.skipWs();
      out[key] = this.parseValue(depth);
      this.skipWs();
      const c = this.text[this.pos];
      if (c === ",") {
        this.pos++;
      } else if (c === "}") {
        this.pos++;
        return out;
      } else {
        throw this.fail("a missing ',' or '}' in an object");
      }
    }
  }
}

/**
 * Parse strict UTF-8 JSON.
 *
 * @param data The bytes to parse.
 * @returns The parsed value.
 * @throws JsonFormatError Invalid UTF-8, a BOM, not JSON, a duplicate key, a float, NaN or
 *   Infinity, an integer beyond ±(2^53-1), or nesting deeper than {@link MAX_JSON_DEPTH}.
 */
export function strictJson(data: Uint8Array): JsonValue {
  let text: string;
  try {
    text = decoder.decode(data);
  } catch (err) {
    throw new JsonFormatError(`expected UTF-8 JSON, got invalid UTF-8 (${String(err)})`);
  }
  if (text.charCodeAt(0) === 0xfeff) {
    throw new JsonFormatError("expected strict JSON, got a UTF-8 byte order mark");
  }
  return new Parser(text).parseDocument();
}

/** Tell whether a parsed value is a JSON object. */
export function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function writeValue(value: JsonValue): string {
  if (value === null || typeof value === "boolean" || typeof value === "string") {
    return JSON.stringify(value);
  }
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) {
      throw new TypeError(`canonical JSON holds integers only, got ${value}`);
    }
    return String(value);
  }
  if (Array.isArray(value)) {
    return `[${value.map(writeValue).join(",")}]`;
  }
  const keys = Object.keys(value).sort(compareCodePoints);
  return `{${keys.map((k) => `${JSON.stringify(k)}:${writeValue(value[k] as JsonValue)}`).join(",")}}`;
}

function compareCodePoints(a: string, b: string): number {
  // Python sorts str keys by code point; UTF-16 order differs only above U+FFFF.
  const ca = Array.from(a, (ch) => ch.codePointAt(0) ?? 0);
  const cb = Array.from(b, (ch) => ch.codePointAt(0) ?? 0);
  for (let i = 0; i < Math.min(ca.length, cb.length); i++) {
    const d = (ca[i] ?? 0) - (cb[i] ?? 0);
    if (d !== 0) {
      return d;
    }
  }
  return ca.length - cb.length;
}

/**
 * Serialise deterministically, byte-identical to Python's
 * `json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)`.
 *
 * @param value A JSON value holding only safe integers.
 * @returns ASCII bytes.
 * @throws TypeError A number that is not a safe integer.
 */
export function canonicalJson(value: JsonValue): Uint8Array {
  const text = writeValue(value).replace(
    /[\u007f-\uffff]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  return new TextEncoder().encode(text);
}
