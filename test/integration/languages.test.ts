// Every language profile against a real engine: hello world with stdin, a
// compile error (compiled languages: status compile_error, nothing runs), a
// runtime error, a timeout; multi-file programs; compile limits checked like
// run limits; versions read from the images.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecResult } from "../../core/schemas.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";
import { LANGUAGE_CASES as CASES } from "../support/languages.ts";

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ concurrency: 2 });
});
afterAll(async () => {
  await gw.close();
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
});

async function exec(body: Record<string, unknown>): Promise<ExecResult> {
  const res = await gw.post("/v1/exec", body);
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return JSON.parse(text) as ExecResult;
}

describe.each(CASES)("$profile", (c) => {
  it("runs hello world with stdin", async () => {
    const r = await exec({ profile: c.profile, code: c.hello, stdin: "world\n" });
    expect(r.stderr).toBe("");
    expect(r).toMatchObject({ status: "ok", exitCode: 0, stdout: "hello world\n" });
    if (c.compiled) expect(r.compile).toMatchObject({ status: "ok", exitCode: 0 });
    else expect(r.compile).toBeUndefined();
    // Build outputs stay out of /workspace: the diff shows only what the caller sent.
    expect(r.diff.added).toEqual([]);
  });

  it("reports a broken program", async () => {
    const r = await exec({ profile: c.profile, code: c.broken });
    if (c.compiled) {
      expect(r.status).toBe("compile_error");
      expect(r.compile?.status).toBe("error");
      expect(r.compile?.exitCode).not.toBe(0);
      expect(`${r.compile?.stdout}${r.compile?.stderr}`).toMatch(/main\.\w+|error/i);
      expect(r).toMatchObject({ stdout: "", stderr: "", exitCode: null });
    } else {
      expect(r.status).toBe("error");
      expect(r.exitCode).not.toBe(0);
    }
  });

  it("reports a runtime error", async () => {
    const r = await exec({ profile: c.profile, code: c.fails });
    expect(r).toMatchObject({ status: "error", exitCode: 3 });
  });

  it("stops a program past its time limit", async () => {
    const r = await exec({ profile: c.profile, code: c.loops, limits: { timeoutMs: 1500 } });
    expect(r.status).toBe("timeout");
    if (c.compiled) expect(r.compile?.status).toBe("ok");
  });
});

describe("compilation", () => {
  it("compiles a C program of several files with a header", async () => {
    const r = await exec({
      profile: "c",
      language: "c",
      files: [
        {
          path: "main.c",
          content:
            '#include <stdio.h>\n#include "add.h"\nint main(void){printf("%d\\n", add(2,3));}\n',
        },
        { path: "add.h", content: "int add(int a, int b);\n" },
        { path: "lib/add.c", content: '#include "../add.h"\nint add(int a, int b){return a+b;}\n' },
      ],
    });
    expect(r).toMatchObject({ status: "ok", stdout: "5\n" });
  });

  it("compiles a Java program with a class per file, and passes args", async () => {
    const r = await exec({
      profile: "java",
      language: "java",
      args: ["x", "y"],
      files: [
        {
          path: "Main.java",
          content:
            'public class Main { public static void main(String[] a) { System.out.println(Greeter.greet(String.join(",", a))); } }\n',
        },
        {
          path: "Greeter.java",
          content: 'class Greeter { static String greet(String n) { return "hi " + n; } }\n',
        },
      ],
    });
    expect(r).toMatchObject({ status: "ok", stdout: "hi x,y\n" });
  });

  it("stops a compile past its own time limit: compile_error, compile status timeout", async () => {
    const r = await exec({
      profile: "cpp",
      // Template recursion deep enough to keep g++ busy for far longer than 300 ms.
      code: "template<int N> struct F { static const long v = F<N-1>::v + F<N-2>::v; };\ntemplate<> struct F<1>{static const long v=1;};\ntemplate<> struct F<0>{static const long v=0;};\n#include <iostream>\n#include <regex>\n#include <map>\nint main(){ std::cout << F<80>::v; }\n",
      compileLimits: { timeoutMs: 300 },
    });
    expect(r.status).toBe("compile_error");
    expect(r.compile).toMatchObject({ status: "timeout", exitCode: null });
  });

  it("runs the program under the run's memory limit, not the compile's", async () => {
    const r = await exec({
      profile: "c",
      code: '#include <stdio.h>\nint main(void){FILE*f=fopen("/sys/fs/cgroup/memory/memory.limit_in_bytes","r");long long v=0;if(f&&fscanf(f,"%lld",&v)==1)printf("%lld\\n",v/1048576);return 0;}\n',
      limits: { memoryMb: 200 },
      compileLimits: { memoryMb: 600 },
    });
    expect(r).toMatchObject({ status: "ok", stdout: "200\n", compile: { status: "ok" } });
  });

  it("compiles and runs in a workspace, whose files the program changes", async () => {
    const created = await gw.post("/v1/workspaces", { profile: "rust" });
    const { id } = (await created.json()) as { id: string };
    try {
      const code =
        'fn main(){ std::fs::write("out.txt", "from rust\\n").unwrap(); println!("wrote"); }\n';
      const res = await gw.post(`/v1/workspaces/${id}/exec`, { code });
      const r = (await res.json()) as ExecResult;
      expect(r).toMatchObject({ status: "ok", stdout: "wrote\n", compile: { status: "ok" } });
      expect(r.diff.added.map((f) => f.path).sort()).toEqual(["main.rs", "out.txt"]);
      const broken = await gw.post(`/v1/workspaces/${id}/exec`, { code: "fn main( {}\n" });
      expect(((await broken.json()) as ExecResult).status).toBe("compile_error");
    } finally {
      await gw.call(gw.key, "DELETE", `/v1/workspaces/${id}`);
    }
  });

  it("refuses compile limits above the profile's maximum, naming the field", async () => {
    const res = await gw.post("/v1/exec", {
      profile: "go",
      code: "package main\nfunc main(){}\n",
      compileLimits: { memoryMb: 999_999 },
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { message: string; details: { field: string } } };
    expect(body.error.details.field).toBe("compileLimits.memoryMb");
  });

  it("lists versions read from the images and the compile limits", async () => {
    const res = await gw.call(gw.key, "GET", "/v1/profiles");
    const { profiles } = (await res.json()) as {
      profiles: { name: string; versions?: Record<string, string>; compileLimits?: unknown }[];
    };
    const byName = new Map(profiles.map((p) => [p.name, p]));
    for (const c of CASES) {
      const versions = byName.get(c.profile)?.versions ?? {};
      expect(Object.values(versions)[0], c.profile).toMatch(/^\d+\.\d+\.\d+$/);
      expect(byName.get(c.profile)?.compileLimits !== undefined, c.profile).toBe(c.compiled);
    }
    // c and cpp share an image: each reports its own language only.
    expect(byName.get("c")?.versions).toEqual({ c: expect.stringMatching(/^12\./) });
    expect(Object.keys(byName.get("cpp")?.versions ?? {})).toEqual(["cpp"]);
  });
});
