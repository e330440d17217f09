// Paths that cross the API boundary. Every path a caller names is checked here
// before it reaches a tar entry or a container: relative to /workspace, no `..`,
// no NUL, no backslash, bounded length. The gateway builds and reads tars on the
// host, so it does not rely on the container or the engine to refuse bad names.
import { AirlockError } from "./errors.ts";

export const WORKSPACE_DIR = "/workspace";
const MAX_PATH_BYTES = 4096;
const MAX_SEGMENT_BYTES = 255;

/** Why `raw` is not a safe workspace-relative path, or undefined when it is. */
export function pathProblem(raw: string): string | undefined {
  if (raw.length === 0) return "is empty";
  if (raw.includes("\0")) return "contains a NUL byte";
  if (raw.includes("\\")) return "contains a backslash";
  if (raw.startsWith("/")) return "is absolute; paths are relative to /workspace";
  if (Buffer.byteLength(raw) > MAX_PATH_BYTES) return `is longer than ${MAX_PATH_BYTES} bytes`;
  for (const segment of raw.split("/")) {
    if (segment === "..") return "contains a '..' segment";
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) {
      return `has a name longer than ${MAX_SEGMENT_BYTES} bytes`;
    }
  }
  if (normalize(raw) === "") return "names /workspace itself, not a file in it";
  return undefined;
}

function normalize(raw: string): string {
  return raw
    .split("/")
    .filter((s) => s !== "" && s !== ".")
    .join("/");
}

/**
 * Returns the normalised form of a workspace-relative path (`./a//b` → `a/b`),
 * or throws invalid_request naming `field` and what is wrong.
 */
export function safeRelativePath(raw: string, field: string): string {
  const problem = pathProblem(raw);
  if (problem !== undefined) {
    throw new AirlockError("invalid_request", `${field} ${JSON.stringify(raw)} ${problem}`, {
      details: { field, path: raw },
    });
  }
  return normalize(raw);
}

/** Every proper parent directory of a relative path, outermost first: `a/b/c` → `a`, `a/b`. */
export function parentDirs(path: string): string[] {
  const parts = path.split("/");
  const dirs: string[] = [];
  for (let i = 1; i < parts.length; i++) dirs.push(parts.slice(0, i).join("/"));
  return dirs;
}
