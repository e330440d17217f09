// The published piston-client, unchanged, for every language profile: hello
// world with stdin, a compile error (Piston's compile stage, and no run stage),
// a runtime error, a timeout; Piston's aliases; compile_timeout and
// compile_memory_limit checked against the profile's compile maximum.
import piston from "piston-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type TestGateway } from "../support/gateway.ts";
import { LANGUAGE_CASES } from "../support/languages.ts";

interface Stage {
  stdout: string;
  stderr: string;
  output: string;
  code: number | null;
  signal: string | null;
  status: string | null;
}
type Answer = { language: string; version: string; run?: Stage; compile?: Stage; message?: string };

/** airlock profile → Piston's language name. */
const PISTON_NAME: Record<string, string> = { cpp: "c++" };

let gw: TestGateway;
let client: ReturnType<typeof piston>;
beforeAll(async () => {
  gw = await startGateway({ concurrency: 2 });
  const url = new URL(gw.url);
  client = piston({ server: `http://piston:${encodeURIComponent(gw.key)}@${url.host}` });
});
afterAll(async () => {
  await gw.close();
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
});

describe.each(LANGUAGE_CASES)("piston-client: $profile", (c) => {
  const language = PISTON_NAME[c.profile] ?? c.profile;

  it("runs hello world with stdin", async () => {
    const r = (await client.execute(language, c.hello, { stdin: "world\n" })) as Answer;
    expect(r.message).toBeUndefined();
    expect(r.language).toBe(language);
    expect(r.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(r.run).toMatchObject({ stdout: "hello world\n", code: 0, status: null });
    if (c.compiled) expect(r.compile).toMatchObject({ code: 0, status: null });
    else expect(r.compile).toBeUndefined();
  });

  it("reports a broken program", async () => {
    const r = (await client.execute(language, c.broken)) as Answer;
    if (c.compiled) {
      expect(r.compile?.status).toBe("RE");
      expect(r.compile?.code).not.toBe(0);
      expect(r.compile?.output).not.toBe("");
      expect(r.run).toBeUndefined();
    } else {
      expect(r.run?.status).toBe("RE");
    }
  });

  it("reports a runtime error", async () => {
    const r = (await client.execute(language, c.fails)) as Answer;
    expect(r.run).toMatchObject({ code: 3, status: "RE" });
  });

  it("stops a program past run_timeout", async () => {
    const r = (await client.execute(language, c.loops, { runTimeout: 1500 })) as Answer;
    expect(r.run).toMatchObject({ status: "TO", signal: "SIGKILL" });
  });
});

describe("piston-client: compiled languages", () => {
  it("answers to Piston's aliases", async () => {
    for (const [alias, c] of [
      ["cpp", "cpp"],
      ["gcc", "c"],
      ["golang", "go"],
      ["rs", "rust"],
      ["rb", "ruby"],
    ] as const) {
      const code = LANGUAGE_CASES.find((x) => x.profile === c)?.hello ?? "";
      // piston-client looks a version up by language name only: an alias needs one given.
      const r = (await client.execute(alias, code, { stdin: "alias\n", version: "*" })) as Answer;
      expect(r.run?.stdout, alias).toBe("hello alias\n");
    }
  });

  it("stops a compile past compile_timeout and refuses one above the maximum", async () => {
    const slow =
      "template<int N> struct F { static const long v = F<N-1>::v + F<N-2>::v; };\ntemplate<> struct F<1>{static const long v=1;};\ntemplate<> struct F<0>{static const long v=0;};\n#include <iostream>\n#include <regex>\nint main(){ std::cout << F<80>::v; }\n";
    const r = (await client.execute("c++", slow, { compileTimeout: 300 })) as Answer;
    expect(r.compile).toMatchObject({ status: "TO", signal: "SIGKILL" });
    expect(r.run).toBeUndefined();
    const refused = (await client.execute("c++", slow, {
      compileMemoryLimit: 64 * 1024 * 1024 * 1024,
    })) as Answer;
    expect(refused.message).toMatch(/compile_memory_limit cannot exceed/);
  });
});
