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
import type { Admission } from "../admission/admit.ts";
import { note } from "../admission/audit.ts";
import type { AuthEnv } from "../auth.ts";
import { parseBody } from "../validate.ts";
import { answerExec } from "./exec.ts";

export interface WorkspaceRouteDeps {
  store: WorkspaceStore;
  files: WorkspaceFiles;
  defaultProfile: string;
}

export interface WorkspaceRoutesOptions extends WorkspaceRouteDeps {
  admission: Admission;
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
 * write, delete and upload. A workspace's profile is checked on every use
 * (admission looks it up: another tenant's workspace is a 404).
 */
export function workspaceRoutes(deps: WorkspaceRoutesOptions) {
  const { store, files, admission } = deps;
  const app = new Hono<AuthEnv>();
  const tenant = (c: { get(key: "caller"): { tenant: string } }) => c.get("caller").tenant;
  /** The plan of a file or archive route: the workspace of the path, whose profile admission checks. */
  const admitOn = (c: Context<AuthEnv>, op: string, scopes: Scope[]) =>
    admission.admit(c, { op, scopes, workspace: c.req.param("id") ?? "" });

  app.post("/v1/workspaces", async (c) => {
    // An empty body is allowed: every field is optional.
    const hasBody =
      (c.req.header("content-length") ?? "0") !== "0" ||
      c.req.header("transfer-encoding") !== undefined;
    const body = hasBody ? await parseBody(c.req.raw, CreateWorkspaceRequest) : {};
    const profile = lookupProfile(deps.profiles, body.profile ?? deps.defaultProfile);
    const hasFiles = (body.files?.length ?? 0) > 0;
    await admission.admit(c, {
      op: "workspace.create",
      scopes: hasFiles ? ["workspaces", "files.write"] : ["workspaces"],
      profile,
      createsWorkspace: true,
    });
    const info = await store.create(
      tenant(c),
      body.profile ?? deps.defaultProfile,
      decodeFiles(body.files),
    );
    return c.json(info, 201);
  });

  app.get("/v1/workspaces/:id", async (c) => {
    const id = c.req.param("id");
    const { workspace } = await admission.admit(c, {
      op: "workspace.get",
      scopes: ["workspaces"],
      workspace: id,
    });
    return c.json(workspace);
  });

  app.delete("/v1/workspaces/:id", async (c) => {
    const id = c.req.param("id");
    await admission.admit(c, { op: "workspace.delete", scopes: ["workspaces"], workspace: id });
    await store.remove(tenant(c), id);
    return c.body(null, 204);
  });

  app.post("/v1/workspaces/:id/exec", async (c) => {
    const body = await parseBody(c.req.raw, WorkspaceExecRequest);
    const id = c.req.param("id");
    const admitted = await admission.admit(c, {
      op: "workspace.exec",
      scopes: ["exec", "workspaces"],
      workspace: id,
      job: {
        request: body,
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
    });
    return answerExec(c, admitted.job);
  });

  app.get("/v1/workspaces/:id/files", async (c) => {
    const { workspace } = await admitOn(c, "files.list", ["files.read"]);
    return c.json(await files.list(tenant(c), workspace.id, c.req.query("path") ?? ""));
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
