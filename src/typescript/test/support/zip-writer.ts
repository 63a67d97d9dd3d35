/**
 * A tiny zip writer with full control over every header field, for building both honest
 * packages and hostile archives (lying sizes, foreign flags, extra fields, symlinks).
 */

import { crc32, deflateRawSync } from "node:zlib";

export interface ZipEntry {
  /** Name as a string (UTF-8) or raw bytes. */
  name: string | Uint8Array;
  data?: Uint8Array | string;
  /** 0 stored (default) or 8 deflate; other values are written as-is with stored data. */
  method?: number;
  /** General-purpose flags; bit 11 (UTF-8) is set automatically for non-ASCII string names. */
  flags?: number;
  extra?: { id: number; data: Uint8Array }[];
  /** Unix mode (e.g. 0o100644, 0o120777 for a symlink); sets "made by" Unix. */
  unixMode?: number;
  /** Override the uncompressed size in the headers (a lying size). */
  declaredSize?: number;
  /** Override the CRC-32 in the headers. */
  crc?: number;
  /** Name written in the local header instead of `name`. */
  localName?: string;
}

function bytes(v: Uint8Array | string | undefined): Buffer {
  if (v === undefined) {
    return Buffer.alloc(0);
  }
  return typeof v === "string" ? Buffer.from(v, "utf8") : Buffer.from(v);
}

/** Build a zip archive from entries, in order. */
export function buildZip(entries: readonly ZipEntry[]): Uint8Array {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = typeof e.name === "string" ? Buffer.from(e.name, "utf8") : Buffer.from(e.name);
    const localName = e.localName === undefined ? name : Buffer.from(e.localName, "utf8");
    const data = bytes(e.data);
    const method = e.method ?? 0;
    const body = method === 8 ? deflateRawSync(data) : data;
    const nonAscii = typeof e.name === "string" && /[^\x00-\x7f]/.test(e.name);
    const flags = e.flags ?? (nonAscii ? 0x800 : 0);
    const crc = e.crc ?? crc32(data);
    const size = e.declaredSize ?? data.length;
    const extra = Buffer.concat(
      (e.extra ?? []).map((x) => {
        const h = Buffer.alloc(4);
        h.writeUInt16LE(x.id, 0);
        h.writeUInt16LE(x.data.length, 2);
        return Buffer.concat([h, Buffer.from(x.data)]);
      }),
    );
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(0x21, 12);
    local.writeUInt32LE(crc >>> 0, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(localName.length, 26);
    local.writeUInt16LE(extra.length, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(e.unixMode === undefined ? 20 : (3 << 8) | 20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(flags, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc >>> 0, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt16LE(extra.length, 30);
    central.writeUInt16LE(0, 32);
    central.writeUInt16LE(0, 34);
    central.writeUInt16LE(0, 36);
    central.writeUInt32LE(e.unixMode === undefined ? 0 : ((e.unixMode << 16) >>> 0), 38);
    central.writeUInt32LE(offset, 42);
    const localRecord = Buffer.concat([local, localName, extra, body]);
    locals.push(localRecord);
    centrals.push(Buffer.concat([central, name, extra]));
    offset += localRecord.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** A reproducible zip of a file map (sorted names, deflate). */
export function zipFiles(files: Record<string, string | Uint8Array>): Uint8Array {
  return buildZip(
    Object.keys(files)
      .sort()
      .map((name) => ({ name, data: files[name] as string | Uint8Array, method: 8 })),
  );
}
