// The operators' dashboard in a real headless Chromium (Debian's, driven by
// playwright-core) against a real gateway on the real engine: log in, watch a
// job run, approve a gated job, press the emergency stop, resume. Screenshots
// of each step go to test/artifacts/ (kept by .ci/run).
import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import Dockerode from "dockerode";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecResult } from "../../core/schemas.ts";
import { LABEL_STOP } from "../../policies/access/stop.ts";
import { keyHash, startGateway, type TestGateway } from "../support/gateway.ts";

const ARTIFACTS = "test/artifacts";
const CHROMIUM = process.env["AIRLOCK_CHROMIUM"] ?? "/usr/bin/chromium";

// Random tenant names: a stop here touches no other test file's gateway.
const suffix = randomUUID().slice(0, 8);
const T = { agent: `agent-${suffix}`, ops: `ops-${suffix}` };
const KEY = { agent: `agent-key-${randomUUID()}`, admin: `admin-key-${randomUUID()}` };
const POLICY = {
  tenants: {
    [T.agent]: {
      // The 30 s sleeper (35 s timeout) runs at once; a job asking for more waits for a human.
      requireApproval: { jobsOverSeconds: 40 },
      quotas: { concurrentJobs: 3, cpuSecondsPerHour: 600, maxJobSeconds: 120 },
      keys: [{ id: "agent", hash: keyHash(KEY.agent), scopes: ["exec"] }],
    },
    [T.ops]: { keys: [{ id: "ops", hash: keyHash(KEY.admin), scopes: ["admin"] }] },
  },
};

let gw: TestGateway;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  gw = await startGateway({ policy: POLICY, concurrency: 2 });
  // Never downloads a browser: Debian's chromium, without its sandbox (tests run as root).
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on("pageerror", (err) => pageErrors.push(err.message));
  // Refused fetches (401, 403) log errors too, by design; a CSP violation must not happen.
  page.on("console", (msg) => {
    if (msg.text().includes("Content Security Policy")) pageErrors.push(msg.text());
  });
  // The stop buttons ask for a confirmation.
  page.on("dialog", (dialog) => void dialog.accept());
});

afterAll(async () => {
  await browser?.close();
  await gw?.close();
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
  const markers = await new Dockerode().listVolumes({ filters: { label: [LABEL_STOP] } });
  expect(
    (markers.Volumes ?? []).filter((v) => Object.values(T).includes(v.Labels?.[LABEL_STOP] ?? "")),
  ).toEqual([]);
});

const shot = (name: string) => page.screenshot({ path: `${ARTIFACTS}/dashboard-${name}.png` });
const exec = (body: unknown) => gw.call(KEY.agent, "POST", "/v1/exec", body);

describe("the dashboard page", () => {
  it("is served without a key, with a CSP that allows only its own nonce and this origin", async () => {
    const res = await fetch(`${gw.url}/dashboard`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const csp = res.headers.get("content-security-policy") ?? "";
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    expect(nonce).toBeDefined();
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    const html = await res.text();
    expect(html).toContain(`<script nonce="${nonce}">`);
    expect(html).not.toContain("{{nonce}}");
    // A new nonce per response.
    const again = (await fetch(`${gw.url}/dashboard`)).headers.get("content-security-policy");
    expect(again).not.toBe(csp);
  });

  it("shows the gateway's refusal for a wrong key and for a key without admin", async () => {
    await page.goto(`${gw.url}/dashboard`);
    await shot("01-login");
    await page.fill("#key", "not-a-key-0123456789");
    await page.click("#login button[type=submit]");
    await page.locator("#login-error").waitFor({ state: "visible" });
    expect(await page.textContent("#login-error")).toMatch(/key/i);
    await page.fill("#key", KEY.agent);
    await page.click("#login button[type=submit]");
    await page.locator("#login-error", { hasText: "lacks scope admin" }).waitFor();
    await shot("02-login-refused");
    expect(await page.isVisible("#board")).toBe(false);
  });

  it("logs in, shows a running job, approves and denies pending ones, stops the tenant and resumes", async () => {
    // A tenant-chosen string in the audit trail (the path of a refused request) stays text.
    const hostile = "/v1/<img src=x onerror=window.__pwned=1>";
    expect((await gw.call(KEY.agent, "GET", hostile)).status).toBe(404);

    await page.fill("#key", KEY.admin);
    await page.click("#login button[type=submit]");
    await page.locator("#board").waitFor({ state: "visible" });
    await page.locator("#stop-banner", { hasText: "No emergency stop in force" }).waitFor();
    await page.locator(`#usage-body tr[data-tenant="${T.agent}"]`).waitFor();
    await page.locator("#audit-body td", { hasText: "onerror=window.__pwned" }).first().waitFor();
    expect(await page.locator("#audit-body img").count()).toBe(0);
    expect(await page.evaluate(() => "__pwned" in globalThis)).toBe(false);
    // The egress panel, from the audit lines: no job here asked for a network.
    await page
      .locator("#egress-body", { hasText: "No job has asked for a network yet." })
      .waitFor();
    await shot("03-logged-in");

    // A long job appears in the running list, with its age and limits.
    const sleeper = exec({
      profile: "shell",
      command: ["sleep", "30"],
      limits: { timeoutMs: 35_000, memoryMb: 128 },
    });
    const row = page.locator("#jobs-body tr[data-job]", { hasText: T.agent });
    await row.filter({ hasText: "running" }).waitFor({ timeout: 15_000 });
    const cells = await row.locator("td").allTextContents();
    expect(cells).toContain("agent");
    expect(cells).toContain("shell");
    expect(cells).toContain("35s");
    expect(cells).toContain("128 MB");
    const jobs = (await (await gw.call(KEY.admin, "GET", "/v1/admin/jobs")).json()) as {
      jobs: { tenant: string; state: string; jobId?: string; limits: { memoryMb?: number } }[];
    };
    expect(jobs.jobs).toEqual([
      expect.objectContaining({ tenant: T.agent, state: "running", limits: expect.any(Object) }),
    ]);
    // The container's own job id: the operator can find it with docker ps.
    expect(cells).toContain(jobs.jobs[0]?.jobId);
    await page.locator(`#usage-body tr[data-tenant="${T.agent}"]`, { hasText: "1 / 3" }).waitFor();
    await shot("04-running-job");

    // A gated job waits; Approve runs it.
    const gated = await exec({
      profile: "shell",
      command: "echo approved-by-the-dashboard",
      limits: { timeoutMs: 60_000 },
    });
    expect(gated.status).toBe(202);
    const { approvalId } = (await gated.json()) as { approvalId: string };
    const pending = page.locator(`#approvals-body tr[data-approval="${approvalId}"]`);
    await pending.waitFor();
    expect(await pending.textContent()).toContain("jobsOverSeconds");
    await shot("05-pending-approval");
    await pending.locator("button", { hasText: "Approve" }).click();
    await pending.waitFor({ state: "detached" });
    const decided = (await (
      await gw.call(KEY.admin, "GET", `/v1/approvals/${approvalId}?wait=30`)
    ).json()) as { status: string; decidedBy: string; result?: ExecResult };
    expect(decided).toMatchObject({ status: "done", decidedBy: "ops" });
    expect(decided.result?.stdout).toBe("approved-by-the-dashboard\n");
    // Deny: that job never runs.
    const second = await exec({
      profile: "shell",
      command: "echo never",
      limits: { timeoutMs: 60_000 },
    });
    expect(second.status).toBe(202);
    const { approvalId: deniedId } = (await second.json()) as { approvalId: string };
    const toDeny = page.locator(`#approvals-body tr[data-approval="${deniedId}"]`);
    await toDeny.locator("button", { hasText: "Deny" }).click();
    await toDeny.waitFor({ state: "detached" });
    expect(
      await (await gw.call(KEY.admin, "GET", `/v1/approvals/${deniedId}`)).json(),
    ).toMatchObject({ status: "denied", decidedBy: "ops" });
    await page.locator("#audit-body tr", { hasText: "approval.run" }).first().waitFor();
    await page.locator("#audit-body tr", { hasText: "approvals.deny" }).first().waitFor();
    await page.locator("#approvals-body", { hasText: "Nothing waits for a decision" }).waitFor();
    await shot("06-approved");

    // The emergency stop of that tenant: the sleeper is killed (423), new requests refused.
    await page.selectOption("#stop-tenant", T.agent);
    await page.click("#stop-one");
    await page.locator("#stop-banner.stopped", { hasText: `Tenant ${T.agent} stopped` }).waitFor();
    const killed = await sleeper;
    expect(killed.status).toBe(423);
    expect(await killed.json()).toMatchObject({ error: { code: "stopped" } });
    const refused = await exec({ profile: "shell", command: ["true"] });
    expect(refused.status).toBe(423);
    await page.locator("#jobs-body", { hasText: "No job is running" }).waitFor();
    await page
      .locator(`#usage-body tr[data-tenant="${T.agent}"] .pill`, { hasText: "stopped" })
      .waitFor();
    await shot("07-stopped");

    // Resume from the banner: the tenant runs again.
    await page.click(`#stop-banner button[data-resume="${T.agent}"]`);
    await page.locator("#stop-banner.clear", { hasText: "No emergency stop in force" }).waitFor();
    const ok = await exec({ profile: "shell", command: ["true"] });
    expect(ok.status).toBe(200);
    await shot("08-resumed");

    expect(await page.isVisible("#action-error")).toBe(false);
    expect(pageErrors).toEqual([]);
  });
});
