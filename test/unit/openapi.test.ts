import SwaggerParser from "@apidevtools/swagger-parser";
import { describe, expect, it } from "vitest";
import { CLIENT_TYPES_FILE, clientTypes, REGENERATE } from "../../api/client-types.ts";
import { openApiPath } from "../../api/openapi.ts";
import { createClient } from "../../client/index.ts";
import { FAKE_KEY, fakeApp } from "../support/fake-app.ts";

type Doc = Parameters<typeof clientTypes>[0] & { openapi: string };

async function document(): Promise<Doc> {
  const { app } = fakeApp();
  const res = await app.request("/openapi.json");
  expect(res.status).toBe(200);
  return (await res.json()) as Doc;
}

const operations = (doc: Doc) =>
  Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
  );

describe("OpenAPI document", () => {
  it("documents exactly the routes the app registers", async () => {
    const { app } = fakeApp();
    const registered = new Set(
      app.routes
        .filter((r) => r.method !== "ALL")
        .map((r) => `${r.method.toUpperCase()} ${openApiPath(r.path)}`),
    );
    const documented = new Set(operations(await document()));
    expect([...registered].filter((r) => !documented.has(r))).toEqual([]);
    expect([...documented].filter((r) => !registered.has(r))).toEqual([]);
    expect(documented).toContain("GET /metrics");
  });

  it("is a valid OpenAPI 3.1 document", async () => {
    await expect(SwaggerParser.validate((await document()) as never)).resolves.toBeDefined();
  });

  it("is served at /openapi.json without a key, with schemas from zod", async () => {
    const doc = (await document()) as unknown as {
      openapi: string;
      paths: Record<
        string,
        Record<
          string,
          {
            requestBody?: {
              content: Record<
                string,
                { schema: { properties: Record<string, unknown>; required?: string[] } }
              >;
            };
          }
        >
      >;
    };
    expect(doc.openapi).toBe("3.1.0");
    const exec = doc.paths["/v1/exec"]?.["post"]?.requestBody?.content["application/json"]?.schema;
    expect(Object.keys(exec?.properties ?? {})).toEqual(
      expect.arrayContaining(["profile", "command", "code", "files", "limits", "returnFiles"]),
    );
    expect(exec?.required).toEqual(["profile"]);
    expect(Object.keys(doc.paths)).toContain("/v1/workspaces/{id}/files/content");
  });

  it("documents the answers that are not JSON: files, tars, the event stream, Piston's errors", async () => {
    const doc = await document();
    const content = (path: string, method: string, status: number) =>
      Object.keys(doc.paths[path]?.[method]?.responses[String(status)]?.content ?? {});
    expect(content("/v1/exec", "post", 200)).toEqual(["application/json", "text/event-stream"]);
    expect(content("/v1/workspaces/{id}/exec", "post", 200)).toContain("text/event-stream");
    expect(content("/v1/workspaces/{id}/files/content", "get", 200)).toEqual([
      "application/octet-stream",
    ]);
    expect(content("/v1/workspaces/{id}/archive", "get", 200)).toEqual(["application/x-tar"]);
    expect(content("/metrics", "get", 200)).toEqual(["text/plain"]);
    expect(content("/dashboard", "get", 200)).toEqual(["text/html"]);
    expect(
      Object.keys(doc.paths["/v1/workspaces/{id}/archive"]?.["put"]?.requestBody?.content ?? {}),
    ).toEqual(["application/x-tar"]);
    expect(
      doc.paths["/api/v2/execute"]?.["post"]?.responses["400"]?.content?.["application/json"],
    ).toEqual({ schema: { $ref: "#/components/schemas/PistonError" } });
  });

  it("serves the docs page without a key", async () => {
    const { app } = fakeApp();
    const res = await app.request("/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(await res.text()).toContain("/openapi.json");
  });
});

describe("the typed client", () => {
  it(`${CLIENT_TYPES_FILE} is generated from the live app's document`, async () => {
    // A file snapshot: `-u` (the command in the message) rewrites the file.
    await expect(
      clientTypes(await document()),
      `${CLIENT_TYPES_FILE} is stale: run ${REGENERATE}`,
    ).toMatchFileSnapshot(`../../${CLIENT_TYPES_FILE}`);
  });

  it("has a method for every documented operation but the pages and MCP", async () => {
    const doc = await document();
    const templates = Object.keys(doc.paths).map((path) => ({
      path,
      pattern: new RegExp(`^${path.replace(/\{[^}]+\}/g, "[^/]+")}$`),
    }));
    const called = new Set<string>();
    const client = createClient({
      baseUrl: "http://airlock.test",
      apiKey: FAKE_KEY,
      fetch: (req) => {
        const path = new URL(req.url).pathname;
        called.add(`${req.method} ${templates.find((t) => t.pattern.test(path))?.path ?? path}`);
        return Response.json({});
      },
    });
    await Promise.all([
      client.exec({ profile: "shell", command: "true" }),
      client.profiles(),
      client.health(),
      client.readiness(),
      client.openapi(),
      client.metrics(),
      client.workspaces.create(),
      client.workspaces.get("w"),
      client.workspaces.delete("w"),
      client.workspaces.exec("w", { command: "true" }),
      client.workspaces.listFiles("w"),
      client.workspaces.readFile("w", "f"),
      client.workspaces.writeFile("w", "f", "x"),
      client.workspaces.deleteFile("w", "f"),
      client.workspaces.exportArchive("w"),
      client.workspaces.importArchive("w", new Uint8Array()),
      client.workspaces.checkpoint("w"),
      client.workspaces.checkpoints("w"),
      client.workspaces.deleteCheckpoint("w", "c"),
      client.workspaces.restore("w", "c"),
      client.workspaces.fork("w", { count: 2 }),
      client.workspaces.diff("w", "c"),
      client.admin.stops(),
      client.admin.stop("t"),
      client.admin.resume(),
      client.admin.reloadPolicy(),
      client.admin.checkEgress({ network: "n", host: "h", port: 443 }),
      client.admin.usage(),
      client.admin.jobs(),
      client.admin.audit({ limit: 5 }),
      client.approvals.list(),
      client.approvals.get("a", 5),
      client.approvals.approve("a"),
      client.approvals.deny("a"),
      client.piston.runtimes(),
      client.piston.execute({ language: "bash", version: "*", files: [{ content: "" }] }),
      client.getExecution("e"),
      client.listExecutions(),
      client.cancelExecution("e"),
      // Not an event stream here: it fails after the request, which is all this counts.
      client
        .executionEvents("e")
        .next()
        .catch(() => undefined),
    ]);
    // Pages for people, and MCP (an MCP client speaks it), go through client.request().
    expect(operations(doc).filter((op) => !called.has(op))).toEqual([
      "GET /docs",
      "GET /docs/scalar.js",
      "GET /dashboard",
      "POST /mcp",
      "GET /mcp",
      "DELETE /mcp",
    ]);
  });
});
