// GET /docs in a real headless Chromium (Debian's, driven by playwright-core)
// against a real gateway: the reference page renders the API's operations
// from the gateway alone. Every request the page makes is recorded, and any
// that would leave the gateway is refused and fails the test — the page must
// work on a machine without internet access and load no third-party code.
import { mkdirSync } from "node:fs";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startGateway, type TestGateway } from "../support/gateway.ts";

const ARTIFACTS = "test/artifacts";
const CHROMIUM = process.env["AIRLOCK_CHROMIUM"] ?? "/usr/bin/chromium";

let gw: TestGateway;
let browser: Browser;
let page: Page;
const offHost: string[] = [];
const problems: string[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  gw = await startGateway();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update"],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(gw.url) || url.startsWith("data:")) return route.continue();
    offHost.push(url);
    return route.abort();
  });
  page.on("pageerror", (err) => problems.push(err.message));
  page.on("console", (msg) => {
    if (msg.text().includes("Content Security Policy")) problems.push(msg.text());
  });
});

afterAll(async () => {
  await browser?.close();
  await gw?.close();
});

it("renders every operation from the gateway alone, under a CSP of the gateway's own origin", async () => {
  const res = await fetch(`${gw.url}/docs`);
  const csp = res.headers.get("content-security-policy") ?? "";
  expect(csp).toContain("default-src 'none'");
  expect(csp).toMatch(/script-src 'nonce-[^']+' 'self'/);
  expect(csp).toContain("connect-src 'self'");
  expect(await res.text()).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)/);

  await page.goto(`${gw.url}/docs`);
  // The sidebar lists each tag once the page has read /openapi.json; opening
  // a tag lists its operations by summary.
  const doc = (await (await fetch(`${gw.url}/openapi.json`)).json()) as {
    paths: Record<string, Record<string, { summary?: string; tags?: string[] }>>;
  };
  const operations = Object.values(doc.paths).flatMap((ops) => Object.values(ops));
  const summaries = operations.flatMap((op) => (op.summary === undefined ? [] : [op.summary]));
  const tags = [...new Set(operations.flatMap((op) => op.tags ?? []))];
  expect(summaries.length).toBeGreaterThan(20);
  const sidebar = page.locator(".sidebar, aside, nav").first();
  await sidebar
    .getByText(tags[0] ?? "", { exact: true })
    .first()
    .waitFor({ timeout: 30_000 });
  for (const tag of tags.slice(1)) {
    await sidebar.getByText(tag, { exact: true }).first().click();
  }
  const text = await sidebar.innerText();
  const missing = summaries.filter((s) => !text.includes(s));
  await page.screenshot({ path: `${ARTIFACTS}/docs-page.png` });
  expect(missing).toEqual([]);
  expect(offHost).toEqual([]);
  expect(problems).toEqual([]);
}, 90_000);
