/**
 * A static HTTP server on 127.0.0.1 for end-to-end tests: serves a mutable in-memory file
 * map or a directory, records every request, and can inject faults per path.
 */

import { readFileSync, statSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join, normalize } from "node:path";

export type Fault =
  | { kind: "status"; status: number }
  | { kind: "endless" }
  | { kind: "lie-length"; length: number }
  | { kind: "stall" }
  | { kind: "gzip" }
  | { kind: "redirect"; location: string };

export class TestServer {
  files: Map<string, Uint8Array> | null = null;
  directory: string | null = null;
  readonly requests: string[] = [];
  /** The Authorization header of each request, in order (undefined when none was sent). */
  readonly authorizations: (string | undefined)[] = [];
  readonly faults = new Map<string, Fault>();
  private server: http.Server | null = null;
  private readonly sockets = new Set<import("node:net").Socket>();
  url = "";

  static async start(source: Map<string, Uint8Array> | string): Promise<TestServer> {
    const s = new TestServer();
    if (typeof source === "string") {
      s.directory = source;
    } else {
      s.files = source;
    }
    await s.listen();
    return s;
  }

  private lookup(path: string): Uint8Array | null {
    if (this.files !== null) {
      return this.files.get(path) ?? null;
    }
    const full = normalize(join(this.directory as string, path));
    if (!full.startsWith(normalize(this.directory as string))) {
      return null;
    }
    try {
      return statSync(full).isFile() ? readFileSync(full) : null;
    } catch {
      return null;
    }
  }

  private listen(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname).replace(/^\//, "");
      this.requests.push(path);
      this.authorizations.push(req.headers.authorization);
      const fault = this.faults.get(path);
      if (fault?.kind === "status") {
        res.writeHead(fault.status).end();
        return;
      }
      if (fault?.kind === "redirect") {
        res.writeHead(302, { location: fault.location }).end();
        return;
      }
      if (fault?.kind === "stall") {
        return; // never answer: the client's read timeout must fire
      }
      if (fault?.kind === "endless") {
        res.writeHead(200, { "content-type": "application/octet-stream" });
        const chunk = Buffer.alloc(64 * 1024, 0x41);
        let sent = 0;
        const pump = (): void => {
          // Bounded anyway: the test server stops by itself after 64 MiB.
          while (sent < 64 * 1024 * 1024 && res.write(chunk)) {
            sent += chunk.length;
          }
          if (sent >= 64 * 1024 * 1024) {
            res.end();
          }
        };
        res.on("drain", pump);
        res.on("close", () => res.removeListener("drain", pump));
        pump();
        return;
      }
      const data = this.lookup(path);
      if (data === null) {
        res.writeHead(404).end();
        return;
      }
      const headers: http.OutgoingHttpHeaders = { "content-length": data.length };
      if (fault?.kind === "lie-length") {
        headers["content-length"] = fault.length;
      }
      if (fault?.kind === "gzip") {
        headers["content-encoding"] = "gzip";
      }
      res.writeHead(200, headers);
      res.end(Buffer.from(data));
    });
    this.server.on("connection", (s) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    return new Promise((resolve) => {
      this.server?.listen(0, "127.0.0.1", () => {
        const addr = this.server?.address() as AddressInfo;
        this.url = `http://127.0.0.1:${addr.port}/`;
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) {
      s.destroy();
    }
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}
