// What changed in /workspace: the manifest before the run against the archive
// after it → added / modified / deleted, each with size and sha256, unified
// patches for small text files, and the bytes of changed files that match the
// caller's returnFiles globs, under the profile's byte cap.
import { createTwoFilesPatch } from "diff";
import picomatch from "picomatch";
import type { Diff, DiffEntry, ReturnedFile } from "../core/schemas.ts";
import type { ScannedEntry } from "./archive.ts";

export interface BeforeEntry {
  sha256: string;
  /** Kept when small enough to patch against. */
  content?: Buffer;
}

export interface DiffOptions {
  patchMaxBytes: number;
  returnMaxBytes: number;
  returnFiles: readonly string[];
  truncated: boolean;
}

export interface DiffOutcome {
  diff: Diff;
  files: ReturnedFile[];
  filesOmitted: string[];
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** UTF-8 without NUL bytes: the text a patch can show faithfully. */
export function asText(data: Buffer): string | undefined {
  if (data.includes(0)) return undefined;
  try {
    return utf8.decode(data);
  } catch {
    return undefined;
  }
}

export function returnMatcher(globs: readonly string[]): (path: string) => boolean {
  if (globs.length === 0) return () => false;
  // dotAll: "**" matches a name with a newline in it, as "*" already does.
  const match = picomatch([...globs], { dot: true, flags: "s" });
  return (path) => match(path);
}

function patchFor(
  path: string,
  before: Buffer | undefined,
  after: Buffer | undefined,
  max: number,
) {
  if ((before?.length ?? 0) > max || (after?.length ?? 0) > max) return undefined;
  const oldText = before === undefined ? "" : asText(before);
  const newText = after === undefined ? "" : asText(after);
  if (oldText === undefined || newText === undefined) return undefined;
  return createTwoFilesPatch(
    before === undefined ? "/dev/null" : `a/${path}`,
    after === undefined ? "/dev/null" : `b/${path}`,
    oldText,
    newText,
  );
}

export function computeDiff(
  before: ReadonlyMap<string, BeforeEntry>,
  after: ReadonlyMap<string, ScannedEntry>,
  options: DiffOptions,
): DiffOutcome {
  const added: DiffEntry[] = [];
  const modified: DiffEntry[] = [];
  const files: ReturnedFile[] = [];
  const filesOmitted: string[] = [];
  const wantReturn = returnMatcher(options.returnFiles);
  let returned = 0;

  // Unchanged entries (most of a large workspace) are dropped before the sort.
  const changed = [...after.values()].filter((e) => before.get(e.path)?.sha256 !== e.sha256);
  for (const entry of changed.sort((a, b) => (a.path < b.path ? -1 : 1))) {
    const prior = before.get(entry.path);
    const out: DiffEntry = {
      path: entry.path,
      type: entry.type,
      size: entry.size,
      sha256: entry.sha256,
    };
    if (entry.type === "file" && entry.content !== undefined) {
      const priorContent = prior === undefined ? undefined : prior.content;
      const comparable = prior === undefined || priorContent !== undefined;
      const patch = comparable
        ? patchFor(entry.path, priorContent, entry.content, options.patchMaxBytes)
        : undefined;
      if (patch !== undefined) out.patch = patch;
    }
    (prior === undefined ? added : modified).push(out);
    if (entry.type !== "file" || !wantReturn(entry.path)) continue;
    if (entry.content === undefined || returned + entry.size > options.returnMaxBytes) {
      filesOmitted.push(entry.path);
      continue;
    }
    returned += entry.size;
    const text = asText(entry.content);
    files.push(
      text === undefined
        ? { path: entry.path, encoding: "base64", content: entry.content.toString("base64") }
        : { path: entry.path, encoding: "utf8", content: text },
    );
  }

  // A partial scan cannot tell a deleted file from one it did not reach.
  const deleted = options.truncated
    ? []
    : [...before.keys()]
        .filter((path) => !after.has(path))
        .sort()
        .map((path) => ({ path }));
  return { diff: { added, modified, deleted, truncated: options.truncated }, files, filesOmitted };
}
