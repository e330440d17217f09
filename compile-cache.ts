// Fills Node's compile cache (the NODE_COMPILE_CACHE directory that `npm start`
// and the gateway image set) with the gateway's modules, before it starts.
// Node strips TypeScript's types with a WebAssembly compiler that, once loaded,
// stays resident for the life of the process: ~20 MB of a gateway that idles
// at ~90 MB. A module found in the cache is not stripped again, so a gateway
// started on a filled cache never loads that compiler. Runs as `prestart`; on
// a cache that is already filled it only checks it. Node drops entries whose
// source changed, so an edit never runs stale code.
import { flushCompileCache, getCompileCacheDir } from "node:module";

if (getCompileCacheDir() === undefined) {
  process.stderr.write("compile-cache: NODE_COMPILE_CACHE is not set; nothing to fill\n");
} else {
  // The gateway's whole module graph (main() itself runs only as the entry point)...
  await import("./main.ts");
  // ...and what it loads later: on the first /mcp request, and with a PostgreSQL store.
  await import("./api/mcp/server.ts");
  await import("./state/pg.ts");
  flushCompileCache();
}
