// The API calls the deployment tests make (socket proxy, compose, the image
// under testcontainers), in one place and with plain fetch: when the typed
// client (client/) lands, only this file needs to switch to it.
import { expect } from "vitest";
import type { ExecResult } from "../../api/schemas.ts";

export interface Target {
  url: string;
  key: string;
}

async function call(t: Target, method: string, path: string, body?: unknown, raw = false) {
  const headers: Record<string, string> = { authorization: `Bearer ${t.key}` };
  let payload: string | Buffer | undefined;
  if (body !== undefined) {
    headers["content-type"] = raw ? "application/octet-stream" : "application/json";
    payload = raw ? (body as Buffer) : JSON.stringify(body);
  }
  return fetch(`${t.url}${path}`, {
    method,
    headers,
    ...(payload === undefined ? {} : { body: payload }),
  });
}

/** POST /v1/exec; fails the test on anything but 200. */
export async function execOnce(t: Target, body: Record<string, unknown>): Promise<ExecResult> {
  const res = await call(t, "POST", "/v1/exec", body);
  const json = (await res.json()) as ExecResult;
  if (res.status !== 200)
    throw new Error(`POST /v1/exec: HTTP ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/**
 * A workspace's whole life: create with a file, write another, run twice (state
 * carries over), read a result, list, fetch the archive, delete. Asserts each step.
 */
export async function workspaceRoundTrip(t: Target): Promise<void> {
  const created = await call(t, "POST", "/v1/workspaces", {
    profile: "python",
    files: [{ path: "a.txt", content: "20" }],
  });
  expect(created.status).toBe(201);
  const { id } = (await created.json()) as { id: string };
  try {
    const put = await call(
      t,
      "PUT",
      `/v1/workspaces/${id}/files/content?path=b.txt`,
      Buffer.from("22"),
      true,
    );
    expect(put.status).toBe(200);
    const run = async (body: unknown) => {
      const res = await call(t, "POST", `/v1/workspaces/${id}/exec`, body);
      expect(res.status).toBe(200);
      return (await res.json()) as ExecResult;
    };
    const first = await run({
      command: [
        "python3",
        "-c",
        "a = int(open('a.txt').read()); b = int(open('b.txt').read()); open('sum.txt', 'w').write(str(a + b))",
      ],
    });
    expect(first.status).toBe("ok");
    expect(first.diff.added.map((f) => f.path)).toEqual(["sum.txt"]);
    const second = await run({ command: ["cat", "sum.txt"] });
    expect(second).toMatchObject({ status: "ok", stdout: "42" });
    const content = await call(t, "GET", `/v1/workspaces/${id}/files/content?path=sum.txt`);
    expect(await content.text()).toBe("42");
    const listing = await call(t, "GET", `/v1/workspaces/${id}/files`);
    const paths = ((await listing.json()) as { path: string }[]).map((e) => e.path).sort();
    expect(paths).toEqual(["a.txt", "b.txt", "sum.txt"]);
    const archive = await call(t, "GET", `/v1/workspaces/${id}/archive`);
    expect(archive.status).toBe(200);
    expect((await archive.arrayBuffer()).byteLength).toBeGreaterThan(512);
  } finally {
    const deleted = await call(t, "DELETE", `/v1/workspaces/${id}`);
    expect([200, 204]).toContain(deleted.status);
  }
}
