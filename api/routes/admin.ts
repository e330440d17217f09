// The operator's routes: emergency stop and resume, policy reload, running
// jobs and the queue, usage against quotas, the audit trail, and approval checkpoints (list, approve, deny; a tenant's own keys may
// read and wait on their approvals).
import { Hono } from "hono";
import { z } from "zod";
import { AirlockError } from "../../core/errors.ts";
import { TENANT_NAME, tenantPolicy } from "../../policies/access/schema.ts";
import type { Admission } from "../admission/admit.ts";
import { approvalFor, decide } from "../admission/approvals.ts";
import { note } from "../admission/audit.ts";
import type { AuthEnv } from "../auth.ts";
import { parseBody } from "../validate.ts";

const TenantTarget = z.strictObject({
  tenant: z
    .string()
    .regex(TENANT_NAME, "must be a tenant name: 1-64 letters, digits, _ . -")
    .optional(),
});

const AuditQuery = z.strictObject({
  tenant: z.string().optional(),
  scope: z.string().optional(),
  status: z.string().optional(),
  op: z.string().optional(),
  since: z
    .string()
    .refine(
      (s) => Number.isFinite(Date.parse(s)) || /^\d+$/.test(s),
      "must be an ISO time or epoch ms",
    )
    .transform((s) => (/^\d+$/.test(s) ? Number(s) : Date.parse(s)))
    .optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(100),
});

const WaitQuery = z.strictObject({
  wait: z.coerce.number().min(0).max(60).default(0),
});

function query<T extends z.ZodType>(schema: T, raw: Record<string, string>): z.infer<T> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join(".") || "(query)";
    throw new AirlockError("invalid_request", `query ${field}: ${issue?.message ?? "invalid"}`, {
      details: { field },
    });
  }
  return parsed.data;
}

/**
 * An optional JSON body: an empty one means {}. Read as text whatever the
 * headers say, so a body sent without Content-Length still counts (a stop
 * meant for one tenant must never become a stop of everything).
 */
async function optionalBody<T extends z.ZodType>(req: Request, schema: T): Promise<z.infer<T>> {
  const text = await req.text();
  if (text.trim() === "") return schema.parse({});
  return parseBody(
    new Request("http://body/", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: text,
    }),
    schema,
  );
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
  const app = new Hono<AuthEnv>();

  app.get("/v1/admin/stop", async (c) => {
    await admission.admit(c, { op: "admin.stop.state", scopes: ["admin"] });
    return c.json(stop.state());
  });

  app.post("/v1/admin/stop", async (c) => {
    await admission.admit(c, { op: "admin.stop", scopes: ["admin"] });
    const { tenant } = await optionalBody(c.req.raw, TenantTarget);
    const state = await stop.stop(tenant);
    const cancelled = approvals.cancelPending(tenant, c.get("caller").keyId);
    return c.json({ ...state, cancelledApprovals: cancelled });
  });

  app.post("/v1/admin/resume", async (c) => {
    await admission.admit(c, { op: "admin.resume", scopes: ["admin"] });
    const { tenant } = await optionalBody(c.req.raw, TenantTarget);
    return c.json(await stop.resume(tenant));
  });

  app.post("/v1/admin/policy/reload", async (c) => {
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

  app.get("/v1/admin/usage", async (c) => {
    await admission.admit(c, { op: "admin.usage", scopes: ["admin"] });
    const current = policy.current();
    return c.json({
      tenants: [...current.tenants.keys()].map((t) => ({
        tenant: t,
        ...quotas.used(t),
        quotas: tenantPolicy(current, t).quotas,
      })),
    });
  });

  app.get("/v1/admin/jobs", async (c) => {
    await admission.admit(c, { op: "admin.jobs", scopes: ["admin"] });
    const list = jobs.list();
    const queuedByTenant: Record<string, number> = {};
    for (const j of list) {
      if (j.state === "queued") queuedByTenant[j.tenant] = (queuedByTenant[j.tenant] ?? 0) + 1;
    }
    return c.json({ jobs: list, queue: { ...queue(), queuedByTenant } });
  });

  app.get("/v1/audit", async (c) => {
    await admission.admit(c, { op: "audit.read", scopes: ["admin"] });
    return c.json({ records: audit.query(query(AuditQuery, c.req.query())) });
  });

  app.get("/v1/approvals", async (c) => {
    await admission.admit(c, { op: "approvals.list", scopes: ["admin"] });
    return c.json({ approvals: approvals.list("pending") });
  });

  app.get("/v1/approvals/:id", async (c) => {
    const id = c.req.param("id");
    // Needs no scope: the tenant's own keys read and wait on their approvals, during a stop too.
    await admission.admit(c, { op: "approvals.get", scopes: [] });
    note(c, { approvalId: id });
    approvalFor(c, access, id);
    const { wait } = query(WaitQuery, c.req.query());
    const view = await approvals.wait(id, wait * 1000, c.req.raw.signal);
    return c.json(view ?? approvalFor(c, access, id));
  });

  for (const action of ["approve", "deny"] as const) {
    app.post(`/v1/approvals/:id/${action}`, async (c) => {
      const id = c.req.param("id");
      await admission.admit(c, { op: `approvals.${action}`, scopes: ["admin"] });
      note(c, { approvalId: id });
      return c.json(decide(c, access, id, action));
    });
  }

  return app;
}
