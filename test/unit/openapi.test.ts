import SwaggerParser from "@apidevtools/swagger-parser";
import { describe, expect, it } from "vitest";
import { buildOpenApi, openApiPath, ROUTES } from "../../api/openapi.ts";
import { fakeApp } from "../support/fake-app.ts";

describe("OpenAPI document", () => {
  it("documents exactly the routes the app registers", () => {
    const { app } = fakeApp();
    const registered = new Set(
      app.routes
        .filter((r) => r.method !== "ALL")
        .map((r) => `${r.method.toLowerCase()} ${openApiPath(r.path)}`),
    );
    const documented = new Set(ROUTES.map((r) => `${r.method} ${openApiPath(r.path)}`));
    expect([...registered].filter((r) => !documented.has(r))).toEqual([]);
    expect([...documented].filter((r) => !registered.has(r))).toEqual([]);
  });

  it("is a valid OpenAPI 3.1 document", async () => {
    const doc = buildOpenApi(ROUTES, "0.0.0");
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeDefined();
  });

  it("is served at /openapi.json without a key, with schemas from zod", async () => {
    const { app } = fakeApp();
    const res = await app.request("/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
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

  it("serves the docs page without a key", async () => {
    const { app } = fakeApp();
    const res = await app.request("/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(await res.text()).toContain("/openapi.json");
  });
});
