// Everyday commands on every profile (policies/profiles and policies/gvisor),
// so under both runtimes: what an agent types first (ls, find, tar, cp -a,
// stat, the text tools, its language's one-liner) must just work. Under the
// gVisor release Debian ships, `ls /tmp` and `stat` failed with EINVAL until
// the gVisor profiles preloaded images/no-automount.c. Each profile runs the
// whole set in one container (one sandbox start, not one per command) and
// each command is its own test, with its exit code and output.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecResult } from "../../core/schemas.ts";
import { loadProfiles, POLICIES_DIR } from "../../policies/load.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

const GVISOR_DIR = join(POLICIES_DIR, "gvisor");

/** The optional tools each built-in image carries; the set is checked both ways. */
const TOOLS: Record<string, readonly string[]> = {
  "airlock/shell:1": ["git"],
  "airlock/python:1": ["python3", "pip", "git"],
  "airlock/node:1": ["node"],
  "airlock/python-data:1": ["python3", "pip", "git"],
  "airlock/gcc:1": [],
  "airlock/go:1": [],
  "airlock/rust:1": [],
  "airlock/java:1": [],
  "airlock/ruby:1": [],
  "airlock/php:1": [],
  "airlock/lua:1": [],
  "airlock/perl:1": [],
  "airlock/csharp:1": [],
};
const OPTIONAL = ["python3", "pip", "node", "git"];

interface Check {
  name: string;
  /** A POSIX sh line, run in /workspace. */
  run: string;
  expect: RegExp;
  /** Only where the image has this tool. */
  needs?: string;
}

const CHECKS: Check[] = [
  { name: "ls", run: "ls", expect: /^data\.txt\nsrc$/m },
  { name: "ls -la /tmp", run: "ls -la /tmp", expect: /^total \d+\nd\S+ +\d+ .* \.\n/ },
  { name: "ls /", run: "ls /", expect: /^tmp$[\s\S]*^usr$[\s\S]*^workspace$/m },
  {
    name: "ls -l of a file",
    run: "ls -l src/a/b/hello.txt",
    expect: / 6 .* src\/a\/b\/hello\.txt$/,
  },
  { name: "mkdir -p", run: "mkdir -p made/x/y && test -d made/x/y && echo made", expect: /^made$/ },
  {
    name: "find /workspace",
    run: "find /workspace -name hello.txt",
    expect: /^\/workspace\/src\/a\/b\/hello\.txt$/,
  },
  {
    name: "tar c/x in /workspace",
    run: "tar -cf src.tar src && mkdir -p untar && tar -xf src.tar -C untar && tar -tf src.tar && cat untar/src/a/b/hello.txt",
    expect: /^src\/a\/b\/hello\.txt\nhello$/m,
  },
  {
    name: "cp -a",
    run: "cp -a src copy && ls -la copy/a/b && cat copy/a/b/hello.txt",
    expect: / hello\.txt\nhello$/,
  },
  {
    name: "stat",
    run: "stat -c '%F %s %U' src/a/b/hello.txt && stat /tmp",
    expect: /^regular file 6 sandbox\n {2}File: \/tmp\n/,
  },
  {
    name: "sort | grep | sed | awk",
    run: "sort data.txt | grep -v c | sed 's/a/A/' | awk '{ print NR \": \" $0 }'",
    expect: /^1: A\n2: b$/,
  },
  {
    name: "python3 -c",
    run: `python3 -c 'import os, sys; print(sys.version_info[0], sorted(os.listdir("/tmp")), os.stat("src").st_mode > 0)'`,
    expect: /^3 \[.*\] True$/,
    needs: "python3",
  },
  { name: "pip --version", run: "pip --version", expect: /^pip \d/, needs: "pip" },
  {
    name: "node -e",
    run: `node -e 'const fs = require("fs"); console.log(fs.readdirSync("src").join(), fs.statSync("/tmp").isDirectory(), process.version)'`,
    expect: /^a true v24\./,
    needs: "node",
  },
  { name: "git --version", run: "git --version", expect: /^git version \d/, needs: "git" },
];

const MARK = "@@smoke";

/** One sh script: each check in a subshell, its output, then a line with its name and exit code. */
function script(checks: readonly Check[]): string {
  const lines = [
    `for t in ${OPTIONAL.join(" ")}; do command -v $t >/dev/null && printf '%s\\n' $t; done`,
    `printf '${MARK} tools 0\\n'`,
  ];
  for (const check of checks) {
    lines.push(`( ${check.run} ) 2>&1; printf '\\n${MARK} ${CHECKS.indexOf(check)} %s\\n' $?`);
  }
  return lines.join("\n");
}

/** The script's output, cut at its marks: name → exit code and output. */
function parse(stdout: string): Map<string, { code: number; output: string }> {
  const out = new Map<string, { code: number; output: string }>();
  let rest = stdout;
  for (;;) {
    const match = new RegExp(`^${MARK} (\\S+) (\\d+)$`, "m").exec(rest);
    if (match === null) return out;
    const [, name, code] = match as unknown as [string, string, string];
    out.set(name, { code: Number(code), output: rest.slice(0, match.index).trim() });
    rest = rest.slice(match.index + match[0].length + 1);
  }
}

const profiles = [...loadProfiles({ extraDir: GVISOR_DIR }).values()].map((p) => ({
  name: p.name,
  runtime: p.runtime,
  image: p.image,
}));

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ concurrency: 2, profilesDir: GVISOR_DIR });
});
afterAll(async () => {
  await gw.close();
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
});

it("covers both runtimes", () => {
  expect(new Set(profiles.map((p) => p.runtime))).toEqual(new Set(["runc", "runsc"]));
});

describe.each(profiles)("$name ($runtime)", ({ name, image }) => {
  const tools = TOOLS[image];
  const checks = CHECKS.filter((c) => c.needs === undefined || tools?.includes(c.needs));
  let result: ExecResult;
  let outputs: Map<string, { code: number; output: string }>;

  beforeAll(async () => {
    const res = await gw.post("/v1/exec", {
      profile: name,
      command: script(checks),
      files: [
        { path: "src/a/b/hello.txt", content: "hello\n" },
        { path: "data.txt", content: "b\na\nc\n" },
      ],
      limits: { timeoutMs: 60_000 },
    });
    result = (await res.json()) as ExecResult;
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${JSON.stringify(result)}`);
    outputs = parse(result.stdout);
  });

  it("runs the whole set, and its usage is measured", () => {
    expect(result).toMatchObject({ status: "ok", exitCode: 0, stdoutTruncated: false });
    expect(result.usage.cpuMs).toEqual(expect.any(Number));
    expect(result.usage.memoryPeakBytes).toBeGreaterThan(1024 * 1024);
  });

  it("has the tools its image should have, no more", () => {
    expect(tools, `no tool list for ${image} in smoke.test.ts`).toBeDefined();
    const found = outputs.get("tools")?.output ?? "";
    expect(found === "" ? [] : found.split("\n")).toEqual(tools);
  });

  it.each(checks)("$name", (check) => {
    const got = outputs.get(String(CHECKS.indexOf(check)));
    expect(got, "the script did not reach this check").toBeDefined();
    expect({ code: got?.code, output: got?.output }).toEqual({
      code: 0,
      output: expect.stringMatching(check.expect),
    });
  });
});
