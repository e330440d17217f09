// The languages phase of `npm run bench`: per language, hello world compiled
// (where the language compiles) and run through airlock, against `docker run
// --rm` of the same image with the same hardening flags, the source piped in
// on stdin and the profile's own compile and run commands, measured side by
// side. Reports how much of airlock's time the compile stage takes, to show
// where compilation dominates.
import { spawn } from "node:child_process";
import { join } from "node:path";
import type { LoadedProfile } from "../core/profile.ts";
import type { ExecResult } from "../core/schemas.ts";
import { POLICIES_DIR } from "../policies/load.ts";

const ROUNDS = Number(process.env["BENCH_LANG_ROUNDS"] ?? 5);

/** Hello world per language profile. */
const HELLO: Record<string, string> = {
  c: '#include <stdio.h>\nint main(void){puts("hello");return 0;}\n',
  cpp: '#include <iostream>\nint main(){std::cout<<"hello\\n";}\n',
  java: 'public class Main { public static void main(String[] a) { System.out.println("hello"); } }\n',
  go: 'package main\nimport "fmt"\nfunc main(){ fmt.Println("hello") }\n',
  rust: 'fn main(){ println!("hello"); }\n',
  csharp: 'class P { static void Main() { System.Console.WriteLine("hello"); } }\n',
  ruby: 'puts "hello"\n',
  php: '<?php echo "hello\\n";\n',
  lua: 'print("hello")\n',
  perl: 'print "hello\\n";\n',
  python: 'print("hello")\n',
  "python-data": 'import numpy, pandas\nprint("hello")\n',
};

function quote(arg: string): string {
  return `'${arg.replace(/'/g, "'\\''")}'`;
}

/** `docker run --rm` of the profile's image with airlock's hardening, the source on stdin. */
function dockerRunArgs(p: LoadedProfile): string[] {
  const language = p.languages[p.defaultLanguage ?? ""] ?? Object.values(p.languages)[0];
  if (language === undefined) throw new Error(`profile ${p.name} runs no language`);
  const steps = [`cat > ${quote(language.file)}`];
  if (language.compile !== undefined) steps.push(language.compile.map(quote).join(" "));
  steps.push(language.command.map(quote).join(" "));
  const l = p.limits.default;
  // The compile's memory for the whole run: docker run cannot change it half-way.
  const memoryMb = language.compile === undefined ? l.memoryMb : p.compileLimits.default.memoryMb;
  return [
    "run",
    "--rm",
    "-i",
    "--network",
    "none",
    "--read-only",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges:true",
    "--security-opt",
    `seccomp=${join(POLICIES_DIR, "seccomp", p.seccomp)}`,
    "--init",
    "--user",
    p.user,
    "--memory",
    `${memoryMb}m`,
    "--memory-swap",
    `${memoryMb}m`,
    "--cpus",
    String(l.cpus),
    "--pids-limit",
    String(l.pids),
    "--tmpfs",
    `/tmp:rw,${p.tmpfs.exec === true ? "exec," : ""}nosuid,nodev,size=${p.tmpfs.tmpMb}m`,
    "--log-driver",
    "none",
    "--label",
    "airlock.bench=baseline",
    ...Object.entries(p.env).flatMap(([k, v]) => ["-e", `${k}=${v}`]),
    "-v",
    "/workspace",
    "-w",
    "/workspace",
    p.image,
    "/bin/sh",
    "-c",
    steps.join(" && "),
  ];
}

function dockerRun(p: LoadedProfile, source: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("docker", dockerRunArgs(p), { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.stdin.end(source);
    child.on("close", (code) =>
      code === 0 && out === "hello\n"
        ? resolve()
        : reject(new Error(`docker run of ${p.name} exited ${code}: ${out}${err}`)),
    );
  });
}

function p50(samples: number[]): number {
  const s = [...samples].sort((a, b) => a - b);
  return Math.round(s[Math.max(0, Math.ceil(s.length / 2) - 1)] ?? Number.NaN);
}

type Post = (path: string, body: unknown) => Promise<Response>;

/** One row per language: airlock p50, docker run p50, the ratio, and the compile's share. */
export async function languagePhase(
  post: Post,
  profiles: ReadonlyMap<string, LoadedProfile>,
  results: Record<string, unknown>,
  rows: string[][],
): Promise<void> {
  const out: Record<string, unknown> = {};
  for (const [name, source] of Object.entries(HELLO)) {
    const p = profiles.get(name);
    if (p === undefined) continue;
    const air: number[] = [];
    const compile: number[] = [];
    const base: number[] = [];
    const once = async () => {
      const t0 = performance.now();
      const r = (await (
        await post("/v1/exec", { profile: name, code: source })
      ).json()) as ExecResult;
      if (r.status !== "ok" || r.stdout !== "hello\n") {
        throw new Error(
          `${name} through airlock: ${r.status} ${r.stdout}${r.stderr}${r.compile?.stderr ?? ""}`,
        );
      }
      return { ms: performance.now() - t0, compileMs: r.compile?.durationMs };
    };
    await once(); // warm-up: the pool learns the profile's demand, the page cache the image.
    for (let i = 0; i < ROUNDS; i++) {
      const r = await once();
      air.push(r.ms);
      if (r.compileMs !== undefined) compile.push(r.compileMs);
      // Once more if the engine's shared with others and a run was killed from outside (137).
      let t0 = performance.now();
      await dockerRun(p, source).catch(() => {
        t0 = performance.now();
        return dockerRun(p, source);
      });
      base.push(performance.now() - t0);
    }
    const a = p50(air);
    const b = p50(base);
    const c = compile.length === 0 ? undefined : p50(compile);
    out[name] = { airlockP50: a, baselineP50: b, compileP50: c, ratio: +(b / a).toFixed(2) };
    rows.push([
      `hello world ${name}${c === undefined ? "" : " (compile+run)"}`,
      `p50 ${a} ms${c === undefined ? "" : `, compile ${c} ms (${Math.round((100 * c) / a)}%)`}`,
      `p50 ${b} ms`,
      `${(b / a).toFixed(2)}x`,
    ]);
  }
  results["languages"] = { rounds: ROUNDS, ...out };
}
