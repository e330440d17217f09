// What the checkpoint scripts print, read back: a tree's size, links and
// special files (held to the upload rules), and the two sides of a change
// turned into a diff in the exec-result shape.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { LoadedProfile } from "../../core/profile.ts";
import { assertSafeTree, diffOfSides, parseTreeReport } from "../../executor/checkpoint-output.ts";
import { loadProfiles } from "../../policies/load.ts";

const sha = (s: string) => createHash("sha256").update(s).digest("hex");
const profile = loadProfiles().get("shell") as LoadedProfile;
const z = (...fields: string[]) => `${fields.join("\0")}\0`;

describe("parseTreeReport and assertSafeTree", () => {
  it("reads the size and entries, and lets links that stay inside through", () => {
    const report = parseTreeReport(z("C", "12", "200047", "l", "link-a", "src/a.txt"));
    expect(report).toMatchObject({ entries: 12, bytes: 200047, specials: [] });
    expect(() => assertSafeTree(report, "cp")).not.toThrow();
  });

  it("refuses an absolute link, a link that climbs out through another, and a FIFO", () => {
    const refusal = (out: string) => {
      try {
        assertSafeTree(parseTreeReport(out), "workspace w cannot be checkpointed");
      } catch (err) {
        return (err as Error).message;
      }
      return "accepted";
    };
    expect(refusal(z("C", "1", "0", "l", "pw", "/etc/passwd"))).toContain(
      '"pw" is a symlink to an absolute path',
    );
    expect(refusal(z("C", "2", "0", "l", "x/up", "..", "l", "esc", "x/up/.."))).toContain('"esc"');
    expect(refusal(z("C", "1", "0", "p", "fifo", ""))).toContain('"fifo" is a FIFO');
  });
});

describe("diffOfSides", () => {
  it("turns the described sides into added, modified and deleted, with patches", () => {
    const out =
      z("Sa", "f", "6", "./a.txt", "", "f", "2", "./gone", "", "f", "2", "./same", "") +
      z("Ha", `${sha("a\nb\nc\n")}  ./a.txt`, `${sha("s\n")}  ./same`) +
      z("Sb", "f", "6", "./a.txt", "", "l", "5", "./l", "a.txt", "f", "2", "./same", "") +
      z("Hb", `${sha("a\nB\nc\n")}  ./a.txt`, `${sha("s\n")}  ./same`);
    const files = [
      { path: "a/a.txt", encoding: "utf8" as const, content: "a\nb\nc\n" },
      { path: "b/a.txt", encoding: "utf8" as const, content: "a\nB\nc\n" },
    ];
    const d = diffOfSides(out, files, profile);
    expect(d.added).toEqual([{ path: "l", type: "symlink", size: 5, sha256: sha("a.txt") }]);
    expect(d.modified.map((e) => e.path)).toEqual(["a.txt"]);
    expect(d.modified[0]?.patch).toContain("-b\n+B");
    expect(d.deleted).toEqual([{ path: "gone" }]);
    expect(d.truncated).toBe(false);
  });

  it("reads paths with spaces and names that look like markers", () => {
    const out = z("Sa") + z("Ha") + z("Sb", "l", "2", "./Sa b", "Hb") + z("Hb");
    expect(diffOfSides(out, [], profile).added).toEqual([
      { path: "Sa b", type: "symlink", size: 2, sha256: sha("Hb") },
    ]);
  });
});
