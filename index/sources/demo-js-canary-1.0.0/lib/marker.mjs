// Leaves the canary's marker at import time: the Node twin of demo_canary/_marker.py.
import { appendFileSync } from "node:fs";

const path = process.env.MODELMESH_CANARY_PATH;
if (path) {
  appendFileSync(path, "demo-js-canary/lib/marker.mjs\n");
}

export const MARKED = Boolean(path);
