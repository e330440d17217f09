// admit(plan) on its own (api/admission/admit.ts): each check, in order, with
// a fake engine and a fake workspace store that record what they were asked.
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { createAccess } from "../../api/admission/access.ts";
import { Admission, type Plan } from "../../api/admission/admit.ts";
import type { AuditNote, AuthEnv } from "../../api/auth.ts";
import { Executions } from "../../api/executions/executions.ts";
import { AirlockError } from "../../core/errors.ts";
import type { LoadedProfile } from "../../core/profile.ts";
import type { ExecResult } from "../../core/schemas.ts";
import type { LabelledObject } from "../../executor/docker.ts";
import type { WorkspaceInfo } from "../../executor/workspaces.ts";
import { PolicyHolder, parsePolicy } from "../../policies/access/load.ts";
import { loadProfiles } from "../../policies/load.ts";
import { okResult } from "../support/fake-executor.ts";
import { tempState } from "../support/temp-state.ts";

const hash = (n: number) => `sha256:${n.toString(16).padStart(64, "0")}`;

const POLICY = {
  tenants: {
    acme: {
      rateLimits: { "files.read": { perMinute: 2 } },
      quotas: { maxWorkspaces: 1, maxJobSeconds: 5 },
      keys: [
        { id: "all", hash: hash(1), scopes: ["exec", "workspaces", "files.read", "network"] },
        {
          id: "py",
          hash: hash(2),
          scopes: ["exec", "workspaces", "files.read"],
          profiles: ["python"],
        },
        { id: "reader", hash: hash(3), scopes: ["files.read"] },
      ],
    },
    gate: {
      requireApproval: { network: true },
      keys: [{ id: "gated", hash: hash(4), scopes: ["exec", "network"] }],
    },
    ops: { keys: [{ id: "root", hash: hash(5), scopes: ["admin"] }] },
  },
};

function setup() {
  const base = loadProfiles();
  const profiles = new Map(base);
  const shell = base.get("shell") as LoadedProfile;
  profiles.set("web", { ...shell, name: "web", network: "bridge" });
  const volumes = new Map<string, Record<string, string>>();
  const engine = {
    asked: [] as string[],
    createVolume: async (name: string, labels: Record<string, string>) => {
      volumes.set(name, labels);
    },
    removeVolume: async (name: string) => {
      volumes.delete(name);
    },
    listVolumes: async (label: string): Promise<LabelledObject[]> => {
      engine.asked.push(`listVolumes ${label}`);
      const [key, value] = label.split("=");
      return [...volumes]
        .filter(
          ([, l]) =>
            l[key as string] !== undefined && (value === undefined || l[key as string] === value),
        )
        .map(([id, labels]) => ({ id, labels }));
    },
  };
  const policy = new PolicyHolder(parsePolicy("p.json", JSON.stringify(POLICY)));
  const state = tempState().state;
  const access = createAccess({
    policy,
    client: engine,
    approvals: state.approvals,
    instanceId: "unit",
  });
  const owned = new Map<string, { tenant: string; profile: string }>([
    ["ws_shell", { tenant: "acme", profile: "shell" }],
    ["ws_python", { tenant: "acme", profile: "python" }],
  ]);
  const store = {
    get: async (tenant: string, id: string): Promise<WorkspaceInfo> => {
      engine.asked.push(`get ${tenant} ${id}`);
      const ws = owned.get(id);
      if (ws === undefined || ws.tenant !== tenant)
        throw new AirlockError("not_found", `workspace ${JSON.stringify(id)} does not exist`);
      const at = new Date(0).toISOString();
      return { id, profile: ws.profile, createdAt: at, lastUsedAt: at, expiresAt: at };
    },
  };
  const executions = new Executions({
    state,
    instanceId: "unit",
    warn: () => {},
  });
  const admission = new Admission({
    access,
    profiles,
    workspaces: store,
    executions,
    jobs: BUILDERS,
  });

  /** Admits `plan` for key `keyId` in a real request context; the outcome, the error and the audit note. */
  async function admit(keyId: string, plan: Plan) {
    const grant = policy.current().keys.find((k) => k.keyId === keyId);
    if (grant === undefined) throw new Error(`no key ${keyId}`);
    let outcome: Awaited<ReturnType<typeof admission.admit>> | undefined;
    let error: AirlockError | undefined;
    let audit: AuditNote = {};
    let response: Response | undefined;
    const app = new Hono<AuthEnv>();
    app.post("/", async (c) => {
      c.set("caller", { tenant: grant.tenant, keyId, grant });
      try {
        outcome = await admission.admit(c, plan);
        if (outcome.job?.status === "pending_approval") response = outcome.job.response;
      } catch (err) {
        if (!(err instanceof AirlockError)) throw err;
        error = err;
      }
      audit = c.get("audit");
      return c.body(null, 204);
    });
    await app.request("/", { method: "POST" });
    return { outcome, error, audit, response };
  }
  const profile = (name: string) => profiles.get(name) as LoadedProfile;
  return { admit, admission, access, engine, volumes, profile };
}

const ran: { timeoutMs: number }[] = [];
const JOB = { kind: "exec" as const, request: { command: ["true"] } };
/** Both kinds of job: each run records the limits it was given. */
const BUILDERS = {
  exec: async (job: { limits: { timeoutMs: number } }): Promise<ExecResult> => {
    ran.push(job.limits);
    return okResult("job");
  },
  "workspace.exec": async (job: { limits: { timeoutMs: number } }): Promise<ExecResult> => {
    ran.push(job.limits);
    return okResult("job");
  },
};

describe("admit(plan)", () => {
  it("checks the stop first: 423 before scopes, and the engine is never asked", async () => {
    const { admit, access, engine } = setup();
    await access.deps.stop.stop("acme");
    const { error, audit } = await admit("reader", {
      op: "workspace.get",
      scopes: ["workspaces"],
      workspace: "ws_shell",
    });
    expect(error?.code).toBe("stopped");
    expect(error?.message).toContain("stop of tenant acme");
    expect(engine.asked).toEqual([]);
    expect(audit).toMatchObject({
      op: "workspace.get",
      scope: "workspaces",
      workspace: "ws_shell",
    });
  });

  it("lets admin plans and plans needing no scope through a stop", async () => {
    const { admit, access } = setup();
    await access.deps.stop.stop();
    expect((await admit("root", { op: "admin.usage", scopes: ["admin"] })).error).toBeUndefined();
    const open = await admit("all", { op: "profiles.list", scopes: [] });
    expect(open.error).toBeUndefined();
    expect(open.outcome?.caller.keyId).toBe("all");
    // No scope noted: the audit line says null, not "".
    expect(open.audit).toEqual({ op: "profiles.list" });
    expect((await admit("all", { op: "exec", scopes: ["exec"] })).error?.code).toBe("stopped");
  });

  it("refuses a missing scope (403 naming it) before the workspace is looked up", async () => {
    const { admit, engine } = setup();
    const { error } = await admit("reader", {
      op: "workspace.delete",
      scopes: ["workspaces"],
      workspace: "ws_shell",
    });
    expect(error?.code).toBe("forbidden");
    expect(error?.message).toBe("this key lacks scope workspaces");
    expect(error?.details).toEqual({ missingScopes: ["workspaces"] });
    expect(engine.asked).toEqual([]);
  });

  it("looks up a workspace's profile itself and checks it; returns the workspace", async () => {
    const { admit, engine } = setup();
    const plan = { op: "workspace.get", scopes: ["workspaces" as const], workspace: "ws_shell" };
    const refused = await admit("py", plan);
    expect(refused.error?.code).toBe("forbidden");
    expect(refused.error?.message).toBe("this key may not use profile shell");
    expect(refused.audit).toMatchObject({ profile: "shell", workspace: "ws_shell" });
    expect(engine.asked).toEqual(["get acme ws_shell"]);
    const allowed = await admit("py", { ...plan, workspace: "ws_python" });
    expect(allowed.error).toBeUndefined();
    expect(allowed.outcome?.workspace).toMatchObject({ id: "ws_python", profile: "python" });
    expect(allowed.outcome?.profile?.name).toBe("python");
  });

  it("answers 404 for another tenant's workspace, whatever its profile", async () => {
    const { admit } = setup();
    const { error } = await admit("gated", {
      op: "workspace.exec",
      scopes: ["exec"],
      workspace: "ws_shell",
      job: JOB,
    });
    expect(error?.code).toBe("not_found");
  });

  it("checks the request's profile: the key's list, and network needs the network scope", async () => {
    const { admit, profile } = setup();
    const py = await admit("py", { op: "exec", scopes: ["exec"], profile: profile("shell") });
    expect(py.error?.message).toBe("this key may not use profile shell");
    const net = await admit("reader", {
      op: "files.list",
      scopes: ["files.read"],
      profile: profile("web"),
    });
    expect(net.error?.code).toBe("forbidden");
    expect(net.error?.details).toEqual({ profile: "web", missingScopes: ["network"] });
    const ok = await admit("all", { op: "exec", scopes: ["exec"], profile: profile("web") });
    expect(ok.outcome?.profile?.name).toBe("web");
  });

  it("takes the rate limit last: refused plans do not count, the third read is 429", async () => {
    const { admit } = setup();
    const read = { op: "files.list", scopes: ["files.read" as const] };
    expect((await admit("py", { ...read, workspace: "ws_shell" })).error?.code).toBe("forbidden");
    expect((await admit("py", { ...read, workspace: "ws_nope" })).error?.code).toBe("not_found");
    expect((await admit("py", { ...read, workspace: "ws_python" })).error).toBeUndefined();
    expect((await admit("py", { ...read, workspace: "ws_python" })).error).toBeUndefined();
    const { error } = await admit("py", { ...read, workspace: "ws_python" });
    expect(error?.code).toBe("rate_limited");
    expect(error?.retryAfterSeconds).toBeGreaterThan(55);
    expect(error?.details).toEqual({ scope: "files.read", window: "perMinute", limit: 2 });
  });

  it("counts the tenant's workspaces only for a plan that makes one", async () => {
    const { admit, volumes, profile, engine } = setup();
    const create = {
      op: "workspace.create",
      scopes: ["workspaces" as const],
      profile: profile("shell"),
      createsWorkspace: true,
    };
    expect((await admit("all", create)).error).toBeUndefined();
    volumes.set("airlock-ws-1", { "airlock.tenant": "acme", "airlock.workspace": "ws_1" });
    const { error } = await admit("all", create);
    expect(error?.code).toBe("quota_exceeded");
    expect(error?.details).toEqual({ limit: "maxWorkspaces", max: 1, used: 1 });
    expect(engine.asked).toEqual([
      "listVolumes airlock.tenant=acme",
      "listVolumes airlock.tenant=acme",
    ]);
    const { createsWorkspace: _, ...get } = create;
    expect((await admit("all", get)).error).toBeUndefined();
  });

  it("gives a job its ticket: run with the tenant's limits, or 202 at a checkpoint", async () => {
    const { admit, profile } = setup();
    const tooLong = await admit("all", {
      op: "exec",
      scopes: ["exec"],
      profile: profile("shell"),
      job: { ...JOB, request: { command: ["true"], limits: { timeoutMs: 6000 } } },
    });
    expect(tooLong.error?.details).toMatchObject({
      field: "limits.timeoutMs",
      quota: "maxJobSeconds",
    });
    const ok = await admit("all", {
      op: "exec",
      scopes: ["exec"],
      profile: profile("shell"),
      job: JOB,
    });
    expect(ok.audit.commandDigest).toMatch(/^sha256:/);
    const ticket = ok.outcome?.job;
    if (ticket?.status !== "admitted") throw new Error("expected an admitted job");
    ran.length = 0;
    expect((await ticket.run({})).status).toBe("ok");
    expect(ran).toEqual([{ timeoutMs: 5000 }]);

    const held = await admit("gated", {
      op: "exec",
      scopes: ["exec"],
      profile: profile("web"),
      job: JOB,
    });
    expect(held.outcome?.job?.status).toBe("pending_approval");
    expect(held.response?.status).toBe(202);
    expect(await held.response?.json()).toMatchObject({ status: "pending", reasons: ["network"] });
    expect(held.audit).toMatchObject({
      status: "pending_approval",
      approvalId: expect.any(String),
    });
  });

  it("named() finds a profile, or 404 listing only those the key may use", async () => {
    const { admission, access } = setup();
    const app = new Hono<AuthEnv>();
    const grant = access.deps.policy.current().keys.find((k) => k.keyId === "py");
    app.get("/:name", (c) => {
      c.set("caller", { tenant: "acme", keyId: "py", grant: grant as never });
      try {
        return c.json({ found: admission.named(c, c.req.param("name")).name });
      } catch (err) {
        return c.json({ details: (err as AirlockError).details });
      }
    });
    expect(await (await app.request("/shell")).json()).toEqual({ found: "shell" });
    expect(await (await app.request("/nope")).json()).toEqual({
      details: { profile: "nope", available: ["python"] },
    });
  });
});
