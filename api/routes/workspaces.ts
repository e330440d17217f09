// The workspace endpoints of DESIGN.md. A workspace belongs to the tenant whose
// key made it; for any other key every endpoint answers 404.
import { Readable } from "node:stream";
import { type Context, Hono } from "hono";
import { AirlockError } from "../../core/errors.ts";
import { type LoadedProfile, lookupProfile } from "../../core/profile.ts";
import { CreateWorkspaceRequest, WorkspaceExecRequest } from "../../core/schemas.ts";
import type { WorkspaceFiles } from "../../executor/workspace-files.ts";
import type { WorkspaceStore } from "../../executor/workspaces.ts";
import type { Scope } from "../../policies/access/schema.ts";
import { decodeFiles, resolveJob } from "../../policies/resolve.ts";
import type { AuthEnv } from "../auth.ts";
import { type Access, note } from "../guard.ts";
import { parseBody } from "../validate.ts";
import { answerExec } from "./exec.ts";

export interface WorkspaceRouteDeps {
  store: WorkspaceStore;
  files: WorkspaceFiles;
  defaultProfile: string;
}

export interface WorkspaceRoutesOptions extends WorkspaceRouteDeps {
  access: Access;
  profiles: ReadonlyMap<string, LoadedProfile>;
}

function pathParam(value: string | undefined): string {
  if (value === undefined || value === "") {
    throw new AirlockError("invalid_request", "the query parameter path is required", {
      details: { field: "path" },
    });
  }
  return value;
}

/**
 * Scopes: `workspaces` to create, read and delete a workspace (plus
 * `files.write` when it is created with files); `exec` and `workspaces` to
 * run in one; `files.read` to list, read and download; `files.write` to
 * write, delete and upload. A workspace's profile is checked on every use.
 */
export function workspaceRoutes(deps: WorkspaceRoutesOptions) {
  const { store, files, access } = deps;
  const app = new Hono<AuthEnv>();
  const tenant = (c: { get(key: "caller"): { tenant: string } }) => c.get("caller").tenant;
  /** Stop, scopes and rate limit, then the workspace's profile (404 for another tenant's). */
  const admitOn = async (c: Context<AuthEnv>, op: string, scopes: Scope[]) => {
    const id = c.req.param("id") ?? "";
    access.admit(c, op, scopes, undefined, id);
    const info = await store.get(tenant(c), id);
    access.checkProfile(c, lookupProfile(deps.profiles, info.profile));
    return id;
  };

  app.post("/v1/workspaces", async (c) => {
    // An empty body is allowed: every field is optional.
    const hasBody =
      (c.req.header("content-length") ?? "0") !== "0" ||
      c.req.header("transfer-encoding") !== undefined;
    const body = hasBody ? await parseBody(c.req.raw, CreateWorkspaceRequest) : {};
    const profile = lookupProfile(deps.profiles, body.profile ?? deps.defaultProfile);
    const hasFiles = (body.files?.length ?? 0) > 0;
    access.admit(
      c,
      "workspace.create",
      hasFiles ? ["workspaces", "files.write"] : ["workspaces"],
      profile,
    );
    await access.admitWorkspace(c);
    const info = await store.create(
      tenant(c),
      body.profile ?? deps.defaultProfile,
      decodeFiles(body.files),
    );
    return c.json(info, 201);
  });

  app.get("/v1/workspaces/:id", async (c) => {
    access.admit(c, "workspace.get", ["workspaces"], undefined, c.req.param("id"));
    return c.json(await store.get(tenant(c), c.req.param("id")));
  });

  app.delete("/v1/workspaces/:id", async (c) => {
    access.admit(c, "workspace.delete", ["workspaces"], undefined, c.req.param("id"));
    await store.remove(tenant(c), c.req.param("id"));
    return c.body(null, 204);
  });

  app.post("/v1/workspaces/:id/exec", async (c) => {
    const body = await parseBody(c.req.raw, WorkspaceExecRequest);
    const id = c.req.param("id");
    // Stop and scopes before the engine is asked for the workspace's profile.
    access.precheck(c, "workspace.exec", ["exec", "workspaces"], id);
    const info = await store.get(tenant(c), id);
    const profile = lookupProfile(deps.profiles, info.profile);
    return access.runJob(
      c,
      body,
      {
        op: "workspace.exec",
        scopes: ["exec", "workspaces"],
        profile,
        workspace: id,
        run: (limits, options) =>
          store.exec(
            tenant(c),
            id,
            (ref, wsProfile) =>
              resolveJob(
                deps.profiles,
                { ...body, profile: wsProfile.name, limits: { ...body.limits, ...limits } },
                tenant(c),
                ref,
              ),
            options,
          ),
      },
      (run) => answerExec(c, run),
    );
  });

  app.get("/v1/workspaces/:id/files", async (c) => {
    const id = await admitOn(c, "files.list", ["files.read"]);
    return c.json(await files.list(tenant(c), id, c.req.query("path") ?? ""));
  });

  app.delete("/v1/workspaces/:id/files", async (c) => {
    await admitOn(c, "files.delete", ["files.write"]);
    await files.remove(tenant(c), c.req.param("id"), pathParam(c.req.query("path")));
    return c.body(null, 204);
  });

  app.get("/v1/workspaces/:id/files/content", async (c) => {
    await admitOn(c, "files.read", ["files.read"]);
    const file = await files.read(tenant(c), c.req.param("id"), pathParam(c.req.query("path")));
    c.header("Content-Type", "application/octet-stream");
    if (file.size !== undefined) c.header("Content-Length", String(file.size));
    note(c, { bytesOut: file.size ?? null });
    return c.body(Readable.toWeb(file.stream) as ReadableStream);
  });

  app.put("/v1/workspaces/:id/files/content", async (c) => {
    await admitOn(c, "files.write", ["files.write"]);
    const content = Buffer.from(await c.req.arrayBuffer());
    return c.json(
      await files.write(tenant(c), c.req.param("id"), pathParam(c.req.query("path")), content),
    );
  });

  app.get("/v1/workspaces/:id/archive", async (c) => {
    await admitOn(c, "archive.read", ["files.read"]);
    const tar = await files.exportTar(tenant(c), c.req.param("id"));
    c.header("Content-Type", "application/x-tar");
    return c.body(Readable.toWeb(tar.stream) as ReadableStream);
  });

  app.put("/v1/workspaces/:id/archive", async (c) => {
    await admitOn(c, "archive.write", ["files.write"]);
    const tar = Buffer.from(await c.req.arrayBuffer());
    return c.json(await files.importTar(tenant(c), c.req.param("id"), tar));
  });

  return app;
}
