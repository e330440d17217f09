// The route declarations validate params, query and JSON bodies (api/validate.ts):
// every failure is a 400 invalid_request in the documented shape, naming the field.
import { describe, expect, it } from "vitest";
import { FAKE_KEY, fakeApp } from "../support/fake-app.ts";

async function answer(res: Response) {
  expect(res.status).toBe(400);
  const body = (await res.json()) as {
    error: { code: string; message: string; details?: unknown };
  };
  expect(body.error.code).toBe("invalid_request");
  return body.error;
}

const auth = { authorization: `Bearer ${FAKE_KEY}` };

describe("request validation", () => {
  it.each([
    ["no Content-Type", {}],
    ["text/plain", { "content-type": "text/plain" }],
    ["a form", { "content-type": "application/x-www-form-urlencoded" }],
  ])("wants a JSON body on exec: %s", async (_label, headers) => {
    const { app, executor } = fakeApp();
    const res = await app.request("/v1/exec", {
      method: "POST",
      headers: { ...auth, ...headers },
      body: JSON.stringify({ profile: "shell", command: "true" }),
    });
    expect(await answer(res)).toEqual({
      code: "invalid_request",
      message: "the body must be JSON (Content-Type: application/json)",
    });
    expect(executor.jobs).toHaveLength(0);
  });

  it("names where malformed JSON breaks, and lists every schema issue", async () => {
    const { app } = fakeApp();
    const post = (body: string) =>
      app.request("/v1/exec", {
        method: "POST",
        headers: { ...auth, "content-type": "application/json; charset=utf-8" },
        body,
      });
    expect((await answer(await post('{"profile": '))).message).toMatch(
      /^the body is not valid JSON: .+/,
    );
    const error = await answer(await post(JSON.stringify({ profile: 7, command: "x", more: 1 })));
    expect(error.message).toMatch(/^profile: /);
    expect(error.details).toEqual({
      issues: expect.arrayContaining([
        { field: "profile", message: expect.any(String) },
        { field: "(body)", message: 'Unrecognized key: "more"' },
      ]),
    });
  });

  it("wants JSON for a workspace's non-empty body", async () => {
    const { app } = fakeApp();
    const res = await app.request("/v1/workspaces", {
      method: "POST",
      headers: { ...auth, "content-type": "text/plain" },
      body: '{"profile":"shell"}',
    });
    expect((await answer(res)).message).toContain("must be JSON");
  });

  it.each([
    [
      "/v1/workspaces/ws_1/files/content",
      "the query parameter path is required",
      { field: "path" },
    ],
    [
      "/v1/workspaces/ws_1/files/content?path=",
      "the query parameter path is required",
      { field: "path" },
    ],
    [
      "/v1/audit?since=yesterday",
      "query since: must be an ISO time or epoch ms",
      { field: "since" },
    ],
    ["/v1/audit?limit=0", "query limit: ", { field: "limit" }],
    ["/v1/audit?bogus=1", 'query (query): Unrecognized key: "bogus"', { field: "(query)" }],
    ["/v1/approvals/a_1?wait=61", "query wait: ", { field: "wait" }],
  ])("checks the query of GET %s", async (path, message, details) => {
    const { app } = fakeApp();
    const error = await answer(await app.request(path, { headers: auth }));
    expect(error.message).toContain(message);
    expect(error.details).toEqual(details);
  });
});
