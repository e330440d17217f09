// The workspace endpoints of DESIGN.md. A workspace belongs to the tenant whose
// key made it; for any other key every endpoint answers 404.
import { Readable } from "node:stream";
import { Hono } from "hono";
import type { WorkspaceFiles } from "../../executor/workspace-files.ts";
import type { WorkspaceStore } from "../../executor/workspaces.ts";
import { decodeFiles } from "../../policies/resolve.ts";
import type { AuthEnv } from "../auth.ts";
import { AirlockError } from "../errors.ts";
import { CreateWorkspaceRequest, WorkspaceExecRequest } from "../schemas.ts";
import { parseBody } from "../validate.ts";
import { answerExec } from "./exec.ts";

export interface WorkspaceRouteDeps {
  store: WorkspaceStore;
  files: WorkspaceFiles;
  defaultProfile: string;
}

function pathParam(value: string | undefined): string {
  if (value === undefined || value === "") {
    throw new AirlockError("invalid_request", "the query parameter path is required", {
      details: { field: "path" },
    });
  }
  return value;
}

export function workspaceRoutes(deps: WorkspaceRouteDeps) {
  const { store, files } = deps;
  const app = new Hono<AuthEnv>();
  const tenant = (c: { get(key: "caller"): { tenant: string } }) => c.get("caller").tenant;

  app.post("/v1/workspaces", async (c) => {
    // An empty body is allowed: every field is optional.
    const hasBody =
      (c.req.header("content-length") ?? "0") !== "0" ||
      c.req.header("transfer-encoding") !== undefined;
    const body = hasBody ? await parseBody(c.req.raw, CreateWorkspaceRequest) : {};
    const info = await store.create(
      tenant(c),
      body.profile ?? deps.defaultProfile,
      decodeFiles(body.files),
    );
    return c.json(info, 201);
  });

  app.get("/v1/workspaces/:id", async (c) => c.json(await store.get(tenant(c), c.req.param("id"))));

  app.delete("/v1/workspaces/:id", async (c) => {
    await store.remove(tenant(c), c.req.param("id"));
    return c.body(null, 204);
  });

  app.post("/v1/workspaces/:id/exec", async (c) => {
    const body = await parseBody(c.req.raw, WorkspaceExecRequest);
    return answerExec(c, (options) => store.exec(tenant(c), c.req.param("id"), body, options));
  });

  app.get("/v1/workspaces/:id/files", async (c) =>
    c.json(await files.list(tenant(c), c.req.param("id"), c.req.query("path") ?? "")),
  );

  app.delete("/v1/workspaces/:id/files", async (c) => {
    await files.remove(tenant(c), c.req.param("id"), pathParam(c.req.query("path")));
    return c.body(null, 204);
  });

  app.get("/v1/workspaces/:id/files/content", async (c) => {
    const file = await files.read(tenant(c), c.req.param("id"), pathParam(c.req.query("path")));
    c.header("Content-Type", "application/octet-stream");
    if (file.size !== undefined) c.header("Content-Length", String(file.size));
    return c.body(Readable.toWeb(file.stream) as ReadableStream);
  });

  app.put("/v1/workspaces/:id/files/content", async (c) => {
    const content = Buffer.from(await c.req.arrayBuffer());
    return c.json(
      await files.write(tenant(c), c.req.param("id"), pathParam(c.req.query("path")), content),
    );
  });

  app.get("/v1/workspaces/:id/archive", async (c) => {
    const tar = await files.exportTar(tenant(c), c.req.param("id"));
    c.header("Content-Type", "application/x-tar");
    return c.body(Readable.toWeb(tar.stream) as ReadableStream);
  });

  app.put("/v1/workspaces/:id/archive", async (c) => {
    const tar = Buffer.from(await c.req.arrayBuffer());
    return c.json(await files.importTar(tenant(c), c.req.param("id"), tar));
  });

  return app;
}
