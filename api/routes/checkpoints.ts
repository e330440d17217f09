// The checkpoint endpoints of DESIGN.md "Workspace checkpoints": take, list and
// delete checkpoints of a workspace, restore one, fork the workspace, diff two
// states. As every workspace endpoint, another tenant's workspace is a 404.
// Scopes: files.write to take, delete and restore; files.read to list and
// diff; workspaces to fork (which makes workspaces, under the tenant's count quota).
import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import { z } from "zod";
import {
  CheckpointInfo,
  CheckpointList,
  CreateCheckpointRequest,
  Diff,
  ForkRequest,
  ForkResult,
  RestoreRequest,
  RestoreResult,
} from "../../core/schemas.ts";
import type { Checkpoints } from "../../executor/checkpoints.ts";
import type { Scope } from "../../policies/access/schema.ts";
import type { Admission } from "../admission/admit.ts";
import { workspaceLimits } from "../admission/job-policy.ts";
import type { AuthEnv } from "../auth.ts";
import { BEARER, errorResponses, json, V1_ERRORS } from "../openapi.ts";
import { jsonBody, optionalJsonBody, routesApp } from "../validate.ts";

export interface CheckpointRoutesOptions {
  checkpoints: Checkpoints;
  admission: Admission;
}

const ws = "/v1/workspaces/{id}";
const params = z.object({ id: z.string().describe("the workspace id (ws_…)") });
const cpParams = params.extend({ cp: z.string().describe("the checkpoint id (cp_…)") });
const errors = errorResponses(V1_ERRORS);
const tags = ["checkpoints"];

const create = createRoute({
  method: "post",
  path: `${ws}/checkpoints`,
  summary: "Take a checkpoint of the workspace as it is now",
  tags,
  security: BEARER,
  middleware: optionalJsonBody(),
  request: {
    params,
    body: { required: false, content: { "application/json": { schema: CreateCheckpointRequest } } },
  },
  responses: { 201: json(CheckpointInfo, "taken"), ...errors },
});
const list = createRoute({
  method: "get",
  path: `${ws}/checkpoints`,
  summary: "The workspace's checkpoints, oldest first",
  tags,
  security: BEARER,
  request: { params },
  responses: { 200: json(CheckpointList, "the checkpoints"), ...errors },
});
const remove = createRoute({
  method: "delete",
  path: `${ws}/checkpoints/{cp}`,
  summary: "Delete a checkpoint and its storage",
  tags,
  security: BEARER,
  request: { params: cpParams },
  responses: { 204: { description: "deleted" }, ...errors },
});
const restore = createRoute({
  method: "post",
  path: `${ws}/restore`,
  summary: "Put the workspace back exactly as a checkpoint has it; answers with the diff it made",
  tags,
  security: BEARER,
  middleware: jsonBody,
  request: {
    params,
    body: { required: true, content: { "application/json": { schema: RestoreRequest } } },
  },
  responses: { 200: json(RestoreResult, "restored"), ...errors },
});
const fork = createRoute({
  method: "post",
  path: `${ws}/fork`,
  summary:
    "New workspaces of the same tenant and profile, holding the workspace's (or a checkpoint's) files",
  tags,
  security: BEARER,
  middleware: optionalJsonBody(),
  request: {
    params,
    body: { required: false, content: { "application/json": { schema: ForkRequest } } },
  },
  responses: { 201: json(ForkResult, "forked"), ...errors },
});
const diff = createRoute({
  method: "get",
  path: `${ws}/diff`,
  summary: "What changed from a checkpoint to another, or to the workspace now",
  tags,
  security: BEARER,
  request: {
    params,
    query: z.object({
      from: z.string().min(1).describe("a checkpoint id"),
      to: z.string().min(1).optional().describe("a checkpoint id, or current (the default)"),
    }),
  },
  responses: { 200: json(Diff, "the diff, as in exec results"), ...errors },
});

export function checkpointRoutes({ checkpoints, admission }: CheckpointRoutesOptions) {
  const app = routesApp<AuthEnv>();
  const tenant = (c: Context<AuthEnv>) => c.get("caller").tenant;
  const admitOn = (c: Context<AuthEnv>, op: string, scopes: Scope[], createsWorkspace = false) =>
    admission.admit(c, { op, scopes, workspace: c.req.param("id") ?? "", createsWorkspace });

  app.openapi(create, async (c) => {
    const { workspace } = await admitOn(c, "checkpoint.create", ["files.write"]);
    const body = (c.req.valid("json") ?? {}) as CreateCheckpointRequest;
    return c.json(await checkpoints.create(tenant(c), workspace.id, body.label), 201);
  });

  app.openapi(list, async (c) => {
    const { workspace } = await admitOn(c, "checkpoint.list", ["files.read"]);
    return c.json({ checkpoints: await checkpoints.list(tenant(c), workspace.id) });
  });

  app.openapi(remove, async (c) => {
    const { workspace } = await admitOn(c, "checkpoint.delete", ["files.write"]);
    await checkpoints.remove(tenant(c), workspace.id, c.req.param("cp"));
    return c.body(null, 204);
  });

  app.openapi(restore, async (c) => {
    const { workspace } = await admitOn(c, "workspace.restore", ["files.write"]);
    const body = c.req.valid("json");
    return c.json(await checkpoints.restore(tenant(c), workspace.id, body.checkpoint));
  });

  app.openapi(fork, async (c) => {
    const { workspace } = await admitOn(c, "workspace.fork", ["workspaces"], true);
    const body = (c.req.valid("json") ?? {}) as ForkRequest;
    const made = await checkpoints.fork(
      tenant(c),
      workspace.id,
      { checkpoint: body.checkpoint, count: body.count ?? 1 },
      workspaceLimits(admission.access, tenant(c)),
    );
    return c.json({ workspaces: made }, 201);
  });

  app.openapi(diff, async (c) => {
    const { workspace } = await admitOn(c, "workspace.diff", ["files.read"]);
    const { from, to } = c.req.valid("query");
    return c.json(await checkpoints.diff(tenant(c), workspace.id, from, to ?? "current"));
  });

  return app;
}
