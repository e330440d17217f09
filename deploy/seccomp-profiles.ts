// The seccomp profiles a sandbox may be created with behind the socket proxy:
// every *.json shipped in policies/seccomp/ (and in the operator's extra
// directories), read once when the proxy starts, each in the form the gateway
// sends it for runc and for runsc (policies/load.ts adapts a profile to gVisor).
// A create body whose seccomp is not one of these, compared as parsed JSON, is
// refused: an inline `{"defaultAction":"SCMP_ACT_ALLOW"}` is as good as none.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { SeccompFile } from "../core/profile.ts";
import { POLICIES_DIR, seccompForGvisor } from "../policies/load.ts";

export type Runtime = "runc" | "runsc";

export interface ShippedSeccomp {
  /** Where it was read from, for messages. */
  file: string;
  runtime: Runtime;
  /** The parsed profile, as the gateway sends it under `runtime`. */
  profile: unknown;
  /** Its compact serialisation: what the proxy forwards in place of the caller's text. */
  text: string;
}

export const SHIPPED_SECCOMP_DIR = join(POLICIES_DIR, "seccomp");

/** Every profile in `dirs` (policies/seccomp/ first); an unreadable or invalid file stops the proxy. */
export function loadSeccompProfiles(dirs: readonly string[]): ShippedSeccomp[] {
  const out: ShippedSeccomp[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir)
        .filter((n) => n.endsWith(".json"))
        .sort();
    } catch (cause) {
      throw new Error(`${dir}: seccomp directory cannot be read (${(cause as Error).message})`, {
        cause,
      });
    }
    for (const name of names) {
      const file = join(dir, name);
      let parsed: unknown;
      try {
        parsed = JSON.parse(readFileSync(file, "utf8"));
      } catch (cause) {
        throw new Error(`${file}: is not valid JSON (${(cause as Error).message})`, { cause });
      }
      const checked = SeccompFile.safeParse(parsed);
      if (!checked.success) {
        throw new Error(`${file}: is not a seccomp profile (${checked.error.issues[0]?.message})`);
      }
      const gvisor = seccompForGvisor(parsed as { syscalls?: unknown });
      out.push({ file, runtime: "runc", profile: parsed, text: JSON.stringify(parsed) });
      out.push({ file, runtime: "runsc", profile: gvisor, text: JSON.stringify(gvisor) });
    }
  }
  if (out.length === 0) throw new Error(`no seccomp profiles in ${dirs.join(", ")}`);
  return out;
}

/** The shipped profile that `text` is for `runtime`, or undefined. */
export function matchSeccomp(
  shipped: readonly ShippedSeccomp[],
  runtime: Runtime,
  text: string,
): ShippedSeccomp | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  return shipped.find((s) => s.runtime === runtime && isDeepStrictEqual(s.profile, parsed));
}
