// Reads what the checkpoint scripts print (checkpoint-scripts.ts): the size of
// a checkpoint, the links and special files of a tree (checked against the
// upload rules), and the two sides of a change, which become a diff in the
// exec-result shape (executor/diff.ts).
import { createHash } from "node:crypto";
import { AirlockError } from "../core/errors.ts";
import type { LoadedProfile } from "../core/profile.ts";
import type { Diff, ReturnedFile } from "../core/schemas.ts";
import type { ScannedEntry } from "./archive.ts";
import { type BeforeEntry, computeDiff } from "./diff.ts";
import { checkTreeLinks } from "./upload.ts";

/** "C entries bytes", then the tree's links and special files (type, path, target). */
export interface TreeReport {
  entries: number;
  bytes: number;
  links: Map<string, string>;
  /** Paths of entries that are neither file, directory nor symlink (FIFOs, sockets, devices). */
  specials: string[];
  /** Paths of files and directories the sandbox user cannot read (or enter). */
  unreadable: string[];
}

export function parseTreeReport(stdout: string): TreeReport {
  const f = stdout.split("\0");
  const report: TreeReport = {
    entries: 0,
    bytes: 0,
    links: new Map(),
    specials: [],
    unreadable: [],
  };
  let i = 0;
  if (f[0] === "C") {
    report.entries = Number(f[1]);
    report.bytes = Number(f[2]);
    i = 3;
  }
  for (; i + 2 < f.length; i += 3) {
    const [type, path, target] = [f[i], f[i + 1] ?? "", f[i + 2] ?? ""];
    if (type === "l") report.links.set(path, target);
    else if (type === "u") report.unreadable.push(path);
    else report.specials.push(path);
  }
  return report;
}

/**
 * 400 naming the first entry of the tree that an upload would have refused,
 * or that the copy cannot read: a checkpoint or fork holds every byte of the
 * workspace or is not made, and the sandbox user, who owns the entry, can make
 * it readable.
 */
export function assertSafeTree(report: TreeReport, what: string): void {
  const unreadable = report.unreadable[0];
  if (unreadable !== undefined) {
    throw new AirlockError(
      "invalid_request",
      `${what}: ${JSON.stringify(unreadable)} cannot be read by the sandbox user (its mode denies it); make it readable (chmod u+r, u+rx for a directory) or delete it, then try again`,
      {
        details: {
          entry: unreadable,
          problem: "cannot be read by the sandbox user",
          unreadable: report.unreadable.slice(0, 20),
        },
      },
    );
  }
  const special = report.specials[0];
  if (special !== undefined) {
    throw new AirlockError(
      "invalid_request",
      `${what}: ${JSON.stringify(special)} is a FIFO, socket or device, which a workspace may not receive`,
      { details: { entry: special, problem: "is not a file, directory or symlink" } },
    );
  }
  try {
    checkTreeLinks(report.links);
  } catch (err) {
    if (!(err instanceof AirlockError)) throw err;
    const { entry, problem } = err.details as { entry: string; problem: string };
    throw new AirlockError("invalid_request", `${what}: ${JSON.stringify(entry)} ${problem}`, {
      details: { entry, problem },
    });
  }
}

interface Side {
  records: Map<string, { type: "file" | "symlink"; size: number; target: string }>;
  sums: Map<string, string>;
}

/** The "S"/"H" sections of describe() (see DESCRIBE in checkpoint-scripts.ts), per side. */
function parseSides(stdout: string): { a: Side; b: Side } {
  const f = stdout.split("\0");
  const sides = {
    a: { records: new Map(), sums: new Map() } as Side,
    b: { records: new Map(), sums: new Map() } as Side,
  };
  let side: Side | undefined;
  let mode: "S" | "H" = "S";
  let i = 0;
  while (i < f.length) {
    const token = f[i] ?? "";
    if (token.length === 2 && (token[0] === "S" || token[0] === "H")) {
      side = token[1] === "a" ? sides.a : sides.b;
      mode = token[0];
      i += 1;
      continue;
    }
    if (side === undefined || token === "") {
      i += 1;
      continue;
    }
    if (mode === "H") {
      // "sha256  ./path"
      side.sums.set(token.slice(66).replace(/^\.\//, ""), token.slice(0, 64));
      i += 1;
      continue;
    }
    const [size, path, target] = [Number(f[i + 1]), f[i + 2] ?? "", f[i + 3] ?? ""];
    const rel = path.replace(/^\.\//, "");
    if (token === "f") side.records.set(rel, { type: "file", size, target: "" });
    else if (token === "l") side.records.set(rel, { type: "symlink", size: target.length, target });
    i += 4;
  }
  return sides;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

function contentOf(files: readonly ReturnedFile[], tag: "a" | "b"): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const file of files) {
    if (!file.path.startsWith(`${tag}/`)) continue;
    out.set(file.path.slice(2), Buffer.from(file.content, file.encoding));
  }
  return out;
}

/**
 * The diff from side a to side b, in an exec result's shape: each side lists
 * only the entries whose records differ, so an entry on neither is unchanged,
 * one on both with the same hash too.
 */
export function diffOfSides(
  stdout: string,
  files: readonly ReturnedFile[],
  profile: LoadedProfile,
): Diff {
  const { a, b } = parseSides(stdout);
  const aContent = contentOf(files, "a");
  const bContent = contentOf(files, "b");
  const before = new Map<string, BeforeEntry>();
  for (const [path, r] of a.records) {
    const hash = r.type === "symlink" ? sha256(r.target) : (a.sums.get(path) ?? `unread:${path}`);
    const content = aContent.get(path);
    before.set(path, content === undefined ? { sha256: hash } : { sha256: hash, content });
  }
  const after = new Map<string, ScannedEntry>();
  for (const [path, r] of b.records) {
    const hash = r.type === "symlink" ? sha256(r.target) : (b.sums.get(path) ?? "");
    const entry: ScannedEntry = { path, type: r.type, size: r.size, sha256: hash };
    const content = bContent.get(path);
    if (content !== undefined) entry.content = content;
    after.set(path, entry);
  }
  return computeDiff(before, after, {
    patchMaxBytes: profile.diff.patchMaxBytes,
    returnMaxBytes: 0,
    returnFiles: [],
    truncated: false,
  }).diff;
}
