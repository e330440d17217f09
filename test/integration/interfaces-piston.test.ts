// The piston-client package from npm, unchanged, against a real gateway. It
// cannot send headers: the key rides in its server URL as HTTP Basic user-info.
import piston from "piston-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GatedGateway, HELD_TIMEOUT_MS, startGatedGateway } from "../support/gated-gateway.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

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

interface Run {
  stdout: string;
  stderr: string;
  output: string;
  code: number | null;
  signal: string | null;
  status: string | null;
  message: string | null;
}
type Answer = { language: string; version: string; run: Run; compile?: unknown; message?: string };

describe("piston-client against airlock", () => {
  it("lists runtimes", async () => {
    const runtimes = (await client.runtimes()) as {
      language: string;
      version: string;
      aliases: string[];
    }[];
    expect(runtimes.map((r) => r.language)).toEqual([
      "python",
      "javascript",
      "typescript",
      "bash",
      "c",
      "c++",
      "java",
      "go",
      "rust",
      "csharp",
      "ruby",
      "php",
      "lua",
      "perl",
    ]);
    expect(runtimes.find((r) => r.language === "python")?.aliases).toContain("py");
  });

  it("runs python with stdin and args, as Piston answers", async () => {
    const r = (await client.execute(
      "python",
      // One write per stream (print() writes each argument apart, unbuffered),
      // so the merged output can only be one stream's line, then the other's.
      "import sys\nsys.stdout.write('%s %s\\n' % (sys.argv[1:], sys.stdin.read().strip()))\nsys.stdout.flush()\nsys.stderr.write('oops\\n')",
      { stdin: "from stdin", args: ["a", "b"] },
    )) as Answer;
    expect(r).toMatchObject({ language: "python", version: "3.11.2" });
    expect(r.compile).toBeUndefined();
    expect(r.run).toMatchObject({
      stdout: "['a', 'b'] from stdin\n",
      stderr: "oops\n",
      code: 0,
      signal: null,
      status: null,
    });
    // Piston's output interleaves both streams as they arrive; the engine keeps
    // each pipe's order but not the order between the two pipes.
    expect(["['a', 'b'] from stdin\noops\n", "oops\n['a', 'b'] from stdin\n"]).toContain(
      r.run.output,
    );
  });

  it("returns all of a long output, past what a streamed result keeps", async () => {
    const r = (await client.execute(
      "python",
      "print('x' * 300000)\nprint('y' * 300000)",
    )) as Answer;
    expect(r.run.status).toBeNull();
    expect(r.run.stdout).toHaveLength(600002);
    expect(r.run.output).toBe(r.run.stdout);
  });

  it("reports a non-zero exit as Piston's RE", async () => {
    const r = (await client.execute("bash", "echo bad >&2; exit 4")) as Answer;
    expect(r.run).toMatchObject({ code: 4, signal: null, status: "RE", stderr: "bad\n" });
  });

  it("reports a timeout as Piston's TO with SIGKILL", async () => {
    const r = (await client.execute("javascript", "setTimeout(() => {}, 60000)", {
      runTimeout: 500,
    })) as Answer;
    expect(r.language).toBe("javascript");
    expect(r.run).toMatchObject({ status: "TO", signal: "SIGKILL", code: null });
  });

  it("answers an unknown language with Piston's 400 message", async () => {
    const r = (await client.execute({
      language: "cobol",
      version: "*",
      files: [{ content: "" }],
    })) as Answer;
    // piston-client looks the version up in /runtimes first; for an unknown language it has none.
    expect(r.message).toMatch(/^cobol-.* runtime is unknown$/);
  });

  it("declares the versions the sandboxes really run", async () => {
    const runtimes = (await client.runtimes()) as { language: string; version: string }[];
    const version = (language: string) => runtimes.find((r) => r.language === language)?.version;
    const py = (await client.execute(
      "python",
      "import platform; print(platform.python_version())",
    )) as Answer;
    expect(py.run.stdout.trim()).toBe(version("python"));
    const js = (await client.execute("javascript", "console.log(process.versions.node)")) as Answer;
    expect(js.run.stdout.trim()).toBe(version("javascript"));
    const ts = (await client.execute(
      "typescript",
      "const v: string = process.versions.node; console.log(v)",
    )) as Answer;
    expect(ts.run.stdout.trim()).toBe(version("typescript"));
    // BASH_VERSION is e.g. 5.2.15(1)-release.
    const sh = (await client.execute("bash", "echo \"$BASH_VERSION\" | cut -d'(' -f1")) as Answer;
    expect(sh.run.stdout.trim()).toBe(version("bash"));
  });

  it("refuses a client without the key", async () => {
    const url = new URL(gw.url);
    const anonymous = piston({ server: `http://${url.host}` });
    const r = (await anonymous.runtimes()) as { message?: string };
    expect(r.message).toContain("missing credentials");
  });
});

describe("piston-client: a job held for an admin's approval", () => {
  let gated: GatedGateway;
  let held: ReturnType<typeof piston>;
  beforeAll(async () => {
    gated = await startGatedGateway();
    const url = new URL(gated.gw.url);
    held = piston({ server: `http://piston:${encodeURIComponent(gated.agentKey)}@${url.host}` });
  });
  afterAll(async () => {
    await gated.gw.close();
    expect(await gated.gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
  });
  type Held = Answer & { approvalId?: string; status?: string; reasons?: string[] };

  it("answers Piston's {message} naming the approval id, and no run; once approved the result is on /v1", async () => {
    const r = (await held.execute("bash", "echo approved", {
      runTimeout: HELD_TIMEOUT_MS,
    })) as Held;
    // piston-client hands back the body whatever the status: Piston's error shape.
    expect(r.run).toBeUndefined();
    expect(r.status).toBe("pending");
    expect(r.reasons).toEqual(["jobsOverSeconds"]);
    const id = r.approvalId ?? "";
    expect(id).toMatch(/^apr_/);
    expect(r.message).toContain(`Approval ${id} is pending until`);
    expect(r.message).toContain(`GET /v1/approvals/${id}?wait=60`);
    expect(await gated.decide(id, "approve")).not.toBe("pending");
    const view = await gated.gw.call(gated.agentKey, "GET", `/v1/approvals/${id}?wait=30`);
    expect(await view.json()).toMatchObject({ status: "done", result: { stdout: "approved\n" } });
  });

  it("answers with a non-2xx status, so fetch and axios clients see a failure, not an empty run", async () => {
    const res = await fetch(`${gated.gw.url}/api/v2/execute`, {
      method: "POST",
      headers: { authorization: `Bearer ${gated.agentKey}` },
      body: JSON.stringify({
        language: "python",
        version: "*",
        files: [{ content: "print(1)" }],
        run_timeout: HELD_TIMEOUT_MS,
      }),
    });
    expect(res.status).toBe(403);
    const body = (await res.json()) as { approvalId: string };
    expect(await gated.decide(body.approvalId, "deny")).toBe("denied");
    const view = await gated.gw.call(gated.agentKey, "GET", `/v1/approvals/${body.approvalId}`);
    expect(await view.json()).toMatchObject({ status: "denied" });
  });
});
