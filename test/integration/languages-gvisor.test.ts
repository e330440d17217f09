// A compiled language under gVisor (runsc): compile and run in one sandbox,
// where the container's limits cannot change between the two stages.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecResult } from "../../core/schemas.ts";
import { POLICIES_DIR } from "../../policies/load.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";
import { LANGUAGE_CASES } from "../support/languages.ts";

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ concurrency: 2, profilesDir: join(POLICIES_DIR, "gvisor") });
});
afterAll(async () => {
  await gw.close();
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
});

const c = LANGUAGE_CASES.find((x) => x.profile === "c");

describe("c-gvisor", () => {
  it("compiles and runs hello world, reports a compile error and a timeout", async () => {
    const post = async (body: unknown) =>
      (await (await gw.post("/v1/exec", body)).json()) as ExecResult;
    const ok = await post({ profile: "c-gvisor", code: c?.hello, stdin: "gvisor\n" });
    expect(ok).toMatchObject({ status: "ok", stdout: "hello gvisor\n", compile: { status: "ok" } });
    const broken = await post({ profile: "c-gvisor", code: c?.broken });
    expect(broken).toMatchObject({ status: "compile_error", compile: { status: "error" } });
    const loops = await post({ profile: "c-gvisor", code: c?.loops, limits: { timeoutMs: 1500 } });
    expect(loops.status).toBe("timeout");
  });
});
