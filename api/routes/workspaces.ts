// The workspace endpoints of DESIGN.md. A workspace belongs to the tenant whose
// key made it; for any other key every endpoint answers 404.
import { Readable } from "node:stream";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import { z } from "zod";
import { type LoadedProfile, lookupProfile } from "../../core/profile.ts";
import {
  ArchiveImport,
  CreateWorkspaceRequest,
  FileListing,
  WorkspaceExecRequest,
  WorkspaceInfo,
  WrittenFile,
} from "../../core/schemas.ts";
import { phase } from "../../core/timing.ts";
import type { Checkpoints } from "../../executor/checkpoints.ts";
import type { WorkspaceFiles } from "../../executor/workspace-files.ts";
import type { Workspace, WorkspaceStore } from "../../executor/workspaces.ts";
import type { Scope } from "../../policies/access/schema.ts";
import { decodeFiles, resolveJob } from "../../policies/resolve.ts";
import type { Admission } from "../admission/admit.ts";
import { note } from "../admission/audit.ts";
import type { JobBuilder } from "../admission/held-jobs.ts";
import { workspaceLimits } from "../admission/job-policy.ts";
import type { AuthEnv } from "../auth.ts";
import type { Executions } from "../executions/executions.ts";
import { BEARER, errorResponses, json, raw, V1_ERRORS } from "../openapi.ts";
import { jsonBody, optionalJsonBody, routesApp } from "../validate.ts";
import { answerExec, EXEC_RESPONSES } from "./exec.ts";

export interface WorkspaceRouteDeps {
  store: WorkspaceStore;
  files: WorkspaceFiles;
  /** Checkpoints, restore, fork, diff (api/routes/checkpoints.ts); app.ts makes one when absent. */
  checkpoints?: Checkpoints | undefined;
  defaultProfile: string;
}

export interface WorkspaceRoutesOptions extends WorkspaceRouteDeps {
  admission: Admission;
  profiles: ReadonlyMap<string, LoadedProfile>;
  executions: Executions;
}

const ws = "/v1/workspaces/{id}";
const params = z.object({ id: z.string().describe("the workspace id (ws_…)") });
const errors = errorResponses(V1_ERRORS);
const filePath = (description: string) =>
  z.object({ path: z.string().min(1).describe(`${description}, relative to /workspace`) });
const noContent = (description: string) => ({ 204: { description }, ...errors });

const create = createRoute({
  method: "post",
  path: "/v1/workspaces",
  summary: "Create a workspace (a volume that outlives each container)",
  tags: ["workspaces"],
  security: BEARER,
  // An empty body is allowed: every field is optional.
  middleware: optionalJsonBody(),
  request: {
    body: { required: false, content: { "application/json": { schema: CreateWorkspaceRequest } } },
  },
  responses: { 201: json(WorkspaceInfo, "created"), ...errors },
});
const get = createRoute({
  method: "get",
  path: ws,
  summary: "A workspace's info",
  tags: ["workspaces"],
  security: BEARER,
  request: { params },
  responses: { 200: json(WorkspaceInfo, "the workspace"), ...errors },
});
const remove = createRoute({
  method: "delete",
  path: ws,
  summary: "Remove a workspace and its volume",
  tags: ["workspaces"],
  security: BEARER,
  request: { params },
  responses: noContent("removed"),
});
const exec = createRoute({
  method: "post",
  path: `${ws}/exec`,
  summary: "Run one operation against the workspace; the diff is against it before the call",
  tags: ["workspaces"],
  security: BEARER,
  middleware: jsonBody,
  request: {
    params,
    body: { required: true, content: { "application/json": { schema: WorkspaceExecRequest } } },
  },
  responses: EXEC_RESPONSES,
});
const listFiles = createRoute({
  method: "get",
  path: `${ws}/files`,
  summary: "Everything under a directory (default: all)",
  tags: ["files"],
  security: BEARER,
  request: {
    params,
    query: z.object({
      path: z.string().optional().describe("directory relative to /workspace (default: all)"),
    }),
  },
  responses: { 200: json(FileListing, "the listing"), ...errors },
});
const deleteFile = createRoute({
  method: "delete",
  path: `${ws}/files`,
  summary: "Delete a file or directory",
  tags: ["files"],
  security: BEARER,
  request: { params, query: filePath("the file or directory") },
  responses: noContent("deleted"),
});
const readFile = createRoute({
  method: "get",
  path: `${ws}/files/content`,
  summary: "A file's bytes",
  tags: ["files"],
  security: BEARER,
  request: { params, query: filePath("the file") },
  responses: {
    200: { description: "raw bytes", content: raw("application/octet-stream", "the file") },
    ...errors,
  },
});
const writeFile = createRoute({
  method: "put",
  path: `${ws}/files/content`,
  summary: "Write a file (raw body)",
  tags: ["files"],
  security: BEARER,
  request: {
    params,
    query: filePath("the file; parents are created"),
    body: { required: true, content: raw("application/octet-stream", "the file's bytes") },
  },
  responses: { 200: json(WrittenFile, "written"), ...errors },
});
const exportArchive = createRoute({
  method: "get",
  path: `${ws}/archive`,
  summary: "The whole workspace as a tar",
  tags: ["files"],
  security: BEARER,
  request: { params },
  responses: {
    200: { description: "tar", content: raw("application/x-tar", "/workspace") },
    ...errors,
  },
});
const importArchive = createRoute({
  method: "put",
  path: `${ws}/archive`,
  summary: "Replace the workspace's contents from a tar (checked entry by entry)",
  tags: ["files"],
  security: BEARER,
  request: {
    params,
    body: { required: true, content: raw("application/x-tar", "a tar archive") },
  },
  responses: { 200: json(ArchiveImport, "imported"), ...errors },
});

/**
 * Scopes: `workspaces` to create, read and delete a workspace (plus
 * `files.write` when it is created with files); `exec` and `workspaces` to
 * run in one; `files.read` to list, read and download; `files.write` to
 * write, delete and upload. A workspace's profile is checked on every use
 * (admission looks it up: another tenant's workspace is a 404).
 */
export function workspaceRoutes(deps: WorkspaceRoutesOptions) {
  const { store, files, admission } = deps;
  const app = routesApp<AuthEnv>();
  const tenant = (c: { get(key: "caller"): { tenant: string } }) => c.get("caller").tenant;
  /** The plan of a file or archive route: the workspace of the path, whose profile admission checks. */
  const admitOn = (c: Context<AuthEnv>, op: string, scopes: Scope[]) =>
    admission.admit(c, { op, scopes, workspace: c.req.param("id") ?? "" });

  app.openapi(create, async (c) => {
    const body = c.req.valid("json");
    const profile = lookupProfile(deps.profiles, body.profile ?? deps.defaultProfile);
    const hasFiles = (body.files?.length ?? 0) > 0;
    await admission.admit(c, {
      op: "workspace.create",
      scopes: hasFiles ? ["workspaces", "files.write"] : ["workspaces"],
      profile,
      createsWorkspace: true,
    });
    // 403 naming a network the key was not granted, before anything is made.
    admission.access.egress(c.get("caller"), body.networks);
    // The policy's count quota is counted again as the volume is made (admission's count is not a reservation).
    const info = await store.create(
      tenant(c),
      body.profile ?? deps.defaultProfile,
      decodeFiles(body.files),
      workspaceLimits(admission.access, tenant(c)),
      body.networks ?? [],
    );
    return c.json(info, 201);
  });

  app.openapi(get, async (c) => {
    const id = c.req.param("id");
    const { workspace } = await admission.admit(c, {
      op: "workspace.get",
      scopes: ["workspaces"],
      workspace: id,
    });
    return c.json(workspace);
  });

  app.openapi(remove, async (c) => {
    const id = c.req.param("id");
    await admission.admit(c, { op: "workspace.delete", scopes: ["workspaces"], workspace: id });
    await store.remove(tenant(c), id);
    return c.body(null, 204);
  });

  app.openapi(exec, async (c) => {
    phase("validate");
    const body = c.req.valid("json");
    const id = c.req.param("id");
    const admitted = await admission.admit(c, {
      op: "workspace.exec",
      scopes: ["exec", "workspaces"],
      workspace: id,
      job: { kind: "workspace.exec" as const, request: body },
    });
    phase("admission");
    return answerExec(c, admitted.job, deps.executions);
  });

  app.openapi(listFiles, async (c) => {
    const { workspace } = await admitOn(c, "files.list", ["files.read"]);
    return c.json(await files.list(tenant(c), workspace.id, c.req.query("path") ?? ""));
  });

  app.openapi(deleteFile, async (c) => {
    await admitOn(c, "files.delete", ["files.write"]);
    await files.remove(tenant(c), c.req.param("id"), c.req.valid("query").path);
    return c.body(null, 204);
  });

  app.openapi(readFile, async (c) => {
    await admitOn(c, "files.read", ["files.read"]);
    const file = await files.read(tenant(c), c.req.param("id"), c.req.valid("query").path);
    c.header("Content-Type", "application/octet-stream");
    if (file.size !== undefined) c.header("Content-Length", String(file.size));
    note(c, { bytesOut: file.size ?? null });
    return c.body(Readable.toWeb(file.stream) as ReadableStream);
  });

  app.openapi(writeFile, async (c) => {
    await admitOn(c, "files.write", ["files.write"]);
    const content = Buffer.from(await c.req.arrayBuffer());
    return c.json(
      await files.write(tenant(c), c.req.param("id"), c.req.valid("query").path, content),
    );
  });

  app.openapi(exportArchive, async (c) => {
    await admitOn(c, "archive.read", ["files.read"]);
    const tar = await files.exportTar(tenant(c), c.req.param("id"));
    c.header("Content-Type", "application/x-tar");
    return c.body(Readable.toWeb(tar.stream) as ReadableStream);
  });

  app.openapi(importArchive, async (c) => {
    await admitOn(c, "archive.write", ["files.write"]);
    // Streamed: checked entry by entry as it arrives, never held whole (workspace-files.ts).
    const body = c.req.raw.body;
    const tar = body === null ? Readable.from([]) : Readable.fromWeb(body as NodeReadableStream);
    return c.json(await files.importTar(tenant(c), c.req.param("id"), tar));
  });

  return app;
}

/** How a workspace exec runs (admission runs it now, or once approved: held-jobs.ts). */
export function workspaceExecJob(
  deps: Pick<WorkspaceRoutesOptions, "store" | "profiles" | "checkpoints">,
): JobBuilder {
  return ({ request, tenant, workspace, id, limits, egress }, options) => {
    const { checkpoint, ...body } = request as WorkspaceExecRequest;
    const { checkpoints } = deps;
    // `checkpoint: true`: one is taken under the same lock, just before the run.
    const before =
      checkpoint === true && checkpoints !== undefined
        ? async (ws: Workspace) => ({ checkpoint: { id: (await checkpoints.take(ws, null)).id } })
        : undefined;
    return deps.store.exec(
      tenant,
      workspace ?? "",
      (ref, wsProfile) => ({
        ...resolveJob(
          deps.profiles,
          { ...body, profile: wsProfile.name, limits: { ...body.limits, ...limits } },
          tenant,
          ref,
        ),
        id,
        egress,
      }),
      options,
      before,
    );
  };
}
