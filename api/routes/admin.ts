// The operator's routes: emergency stop and resume, policy reload, running
// jobs and the queue, usage against quotas, the audit trail, and approval
// checkpoints (list, approve, deny; a tenant's keys that hold the held job's
// scopes may read and wait on its approval).
import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { AirlockError } from "../../core/errors.ts";
import {
  ApprovalList,
  ApprovalView,
  AuditList,
  JobsView,
  ReloadOutcome,
  StopState,
  UsageList,
} from "../../core/schemas.ts";
import type { RunningJobView } from "../../policies/access/running.ts";
import { TENANT_NAME, tenantPolicy } from "../../policies/access/schema.ts";
import { approvalReadScopes } from "../../policies/access/scopes.ts";
import type { AccessDeps } from "../admission/access.ts";
import type { Admission } from "../admission/admit.ts";
import { approvalFor } from "../admission/approvals.ts";
import { note } from "../admission/audit.ts";
import type { AuthEnv } from "../auth.ts";
import { BEARER, errorResponses, json, V1_ERRORS } from "../openapi.ts";
import { optionalJsonBody, routesApp } from "../validate.ts";

const TenantTarget = z
  .strictObject({
    tenant: z
      .string()
      .regex(TENANT_NAME, "must be a tenant name: 1-64 letters, digits, _ . -")
      .optional(),
  })
  .describe("a tenant, or nothing (an empty body) for everything");

const AuditQuery = z.strictObject({
  tenant: z.string().optional().describe("only this tenant"),
  scope: z.string().optional().describe("only records that needed this scope"),
  status: z.string().optional().describe("a result status or an error code"),
  op: z.string().optional().describe("the operation, e.g. exec or files.read"),
  since: z
    .string()
    .refine(
      (s) => Number.isFinite(Date.parse(s)) || /^\d+$/.test(s),
      "must be an ISO time or epoch ms",
    )
    .transform((s) => (/^\d+$/.test(s) ? Number(s) : Date.parse(s)))
    .optional()
    .describe("ISO time or epoch ms"),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(10_000)
    .default(100)
    .describe("at most this many (1-10000, default 100)"),
});

const WaitQuery = z.strictObject({
  wait: z.coerce
    .number()
    .min(0)
    .max(60)
    .default(0)
    .describe("seconds (at most 60) to wait while it is pending or running"),
});

const errors = errorResponses(V1_ERRORS);
const ApprovalId = z.object({ id: z.string() });

/** An admin route: bearer key, the V1 errors, one JSON answer. */
function adminRoute<M extends "get" | "post", P extends string, T extends z.ZodType>(
  method: M,
  path: P,
  summary: string,
  answer: ReturnType<typeof json<T>>,
) {
  return {
    method,
    path,
    summary,
    tags: ["admin"],
    security: BEARER,
    responses: { 200: answer, ...errors },
  };
}

// An optional body read whatever its type says (api/validate.ts): a stop meant for
// one tenant must never become a stop of everything.
const tenantBody = {
  middleware: optionalJsonBody({ anyType: true }),
  request: {
    body: { required: false, content: { "application/json": { schema: TenantTarget } } },
  },
};

const routes = {
  stopState: createRoute(
    adminRoute(
      "get",
      "/v1/admin/stop",
      "The emergency stops in force",
      json(StopState, "stops in force"),
    ),
  ),
  stop: createRoute({
    ...adminRoute(
      "post",
      "/v1/admin/stop",
      "Emergency stop of one tenant or of everything: running jobs killed, queued ones cancelled, new requests 423",
      json(StopState, "stops now in force"),
    ),
    ...tenantBody,
  }),
  resume: createRoute({
    ...adminRoute(
      "post",
      "/v1/admin/resume",
      "Lift an emergency stop",
      json(StopState, "stops still in force"),
    ),
    ...tenantBody,
  }),
  reload: createRoute(
    adminRoute(
      "post",
      "/v1/admin/policy/reload",
      "Re-read the policy file; a bad one keeps the old policy (400 with the reason)",
      json(ReloadOutcome, "the new policy is in force"),
    ),
  ),
  usage: createRoute(
    adminRoute(
      "get",
      "/v1/admin/usage",
      "Each tenant's usage over the last hour, next to its quotas",
      json(UsageList, "usage"),
    ),
  ),
  jobs: createRoute(
    adminRoute(
      "get",
      "/v1/admin/jobs",
      "Running and queued jobs (this gateway's, then, with replicas, every other gateway's), with their age and limits, and this gateway's queue",
      json(JobsView, "jobs and queue"),
    ),
  ),
  audit: createRoute({
    ...adminRoute("get", "/v1/audit", "The audit trail, newest first", json(AuditList, "records")),
    request: { query: AuditQuery },
  }),
  approvals: createRoute(
    adminRoute(
      "get",
      "/v1/approvals",
      "Pending approvals",
      json(ApprovalList, "pending approvals"),
    ),
  ),
  approval: createRoute({
    ...adminRoute(
      "get",
      "/v1/approvals/{id}",
      "An approval (a key of the requesting tenant with the held job's scopes, or an admin; counted against the key's rate limit); with wait, held until it changes",
      json(ApprovalView, "the approval, with the result once run"),
    ),
    request: { params: ApprovalId, query: WaitQuery },
  }),
  approve: createRoute({
    ...adminRoute(
      "post",
      "/v1/approvals/{id}/approve",
      "Approve: the job runs, exactly once",
      json(ApprovalView, "the approval"),
    ),
    request: { params: ApprovalId },
  }),
  deny: createRoute({
    ...adminRoute(
      "post",
      "/v1/approvals/{id}/deny",
      "Deny: the job never runs",
      json(ApprovalView, "the approval"),
    ),
    request: { params: ApprovalId },
  }),
};

/** Other gateways' open executions, from the shared store (replicas), as jobs. */
async function siblingJobs(deps: AccessDeps): Promise<RunningJobView[]> {
  if (deps.cluster === undefined) return [];
  const now = deps.now();
  const open = await deps.cluster.openExecutions(1000);
  return open
    .filter((e) => e.instanceId !== deps.instanceId)
    .map((e) => ({
      id: e.id,
      tenant: e.tenant,
      keyId: "",
      profile: e.profile,
      ...(e.workspace === undefined ? {} : { workspace: e.workspace }),
      state: e.status === "running" ? ("running" as const) : ("queued" as const),
      admittedAt: e.createdAt,
      ...(e.startedAt === undefined
        ? {}
        : { startedAt: e.startedAt, runningMs: now - Date.parse(e.startedAt) }),
      jobId: e.id,
      ageMs: now - Date.parse(e.createdAt),
      gateway: e.instanceId,
      limits: { timeoutMs: 0 },
    }));
}

/** The executor's queue, as GET /v1/admin/jobs shows it. */
export interface QueueView {
  /** Jobs in a sandbox now, this gateway's internal ones (workspace file operations) included. */
  running: number;
  /** Jobs waiting for an executor slot. */
  waiting: number;
}

export function adminRoutes(admission: Admission, queue: () => QueueView) {
  const { access } = admission;
  const { stop, approvals, audit, policy, quotas, jobs } = access.deps;
  const app = routesApp<AuthEnv>();

  app.openapi(routes.stopState, async (c) => {
    await admission.admit(c, { op: "admin.stop.state", scopes: ["admin"] });
    return c.json(stop.state());
  });

  app.openapi(routes.stop, async (c) => {
    await admission.admit(c, { op: "admin.stop", scopes: ["admin"] });
    const { tenant } = c.req.valid("json");
    const state = await stop.stop(tenant);
    const cancelled = await approvals.cancelPending(tenant, c.get("caller").keyId);
    return c.json({ ...state, cancelledApprovals: cancelled });
  });

  app.openapi(routes.resume, async (c) => {
    await admission.admit(c, { op: "admin.resume", scopes: ["admin"] });
    const { tenant } = c.req.valid("json");
    return c.json(await stop.resume(tenant));
  });

  app.openapi(routes.reload, async (c) => {
    await admission.admit(c, { op: "admin.policy.reload", scopes: ["admin"] });
    const outcome = policy.reload();
    if (!outcome.ok) {
      throw new AirlockError(
        "invalid_request",
        `the policy was not reloaded, the old one stays in force: ${outcome.error}`,
        { details: outcome },
      );
    }
    return c.json(outcome);
  });

  app.openapi(routes.usage, async (c) => {
    await admission.admit(c, { op: "admin.usage", scopes: ["admin"] });
    const current = policy.current();
    const tenants = [];
    for (const t of current.tenants.keys()) {
      tenants.push({
        tenant: t,
        ...(await quotas.used(t)),
        quotas: tenantPolicy(current, t).quotas,
      });
    }
    return c.json({ tenants });
  });

  app.openapi(routes.jobs, async (c) => {
    await admission.admit(c, { op: "admin.jobs", scopes: ["admin"] });
    const own = access.deps.instanceId;
    const list = [
      ...jobs.list().map((j) => (own === undefined ? j : { ...j, gateway: own })),
      ...(await siblingJobs(access.deps)),
    ];
    const queuedByTenant: Record<string, number> = {};
    for (const j of list) {
      if (j.state === "queued") queuedByTenant[j.tenant] = (queuedByTenant[j.tenant] ?? 0) + 1;
    }
    return c.json({ jobs: list, queue: { ...queue(), queuedByTenant } });
  });

  app.openapi(routes.audit, async (c) => {
    await admission.admit(c, { op: "audit.read", scopes: ["admin"] });
    return c.json({ records: await audit.query(c.req.valid("query")) });
  });

  app.openapi(routes.approvals, async (c) => {
    await admission.admit(c, { op: "approvals.list", scopes: ["admin"] });
    return c.json({ approvals: await approvals.list("pending") });
  });

  app.openapi(routes.approval, async (c) => {
    const id = c.req.param("id");
    note(c, { op: "approvals.get", approvalId: id });
    // The held job's scopes (its tenant's keys) or admin, counted against the
    // key's rate limit like the job itself; answered during a stop too, which
    // shows it cancelled. Another tenant's approval is a 404 before any of it.
    const held = await approvalFor(c, access, id);
    const scopes = approvalReadScopes(c.get("caller").grant, held);
    await admission.admit(c, { op: "approvals.get", scopes, duringStop: true });
    const { wait } = c.req.valid("query");
    const view = await approvals.wait(id, wait * 1000, c.req.raw.signal);
    return c.json(view ?? (await approvalFor(c, access, id)));
  });

  for (const action of ["approve", "deny"] as const) {
    app.openapi(routes[action], async (c) => {
      const id = c.req.param("id");
      await admission.admit(c, { op: `approvals.${action}`, scopes: ["admin"] });
      note(c, { approvalId: id });
      return c.json(await admission.decide(c, id, action));
    });
  }

  return app;
}
