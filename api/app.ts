// createApp(deps): the whole HTTP surface. Request id, body limit, bearer auth,
// routes, and the one place errors become responses.
import { OpenAPIHono } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { requestId } from "hono/request-id";
import type { Logger } from "pino";
import { AirlockError } from "../core/errors.ts";
import type { LoadedProfile } from "../core/profile.ts";
import { type StateStore, StoreUnavailableError } from "../core/state.ts";
import { PhaseClock, timed } from "../core/timing.ts";
import { Checkpoints, DEFAULT_CHECKPOINT_LIMITS } from "../executor/checkpoints.ts";
import type { ContainerClient } from "../executor/docker.ts";
import type { Executor } from "../executor/executor.ts";
import type { Check } from "../executor/hardening.ts";
import { JobCancelledError } from "../executor/sandbox.ts";
import pkg from "../package.json" with { type: "json" };
import { PolicyHolder } from "../policies/access/load.ts";
import { environmentPolicy } from "../policies/access/schema.ts";
import { type Access, createAccess } from "./admission/access.ts";
import { Admission } from "./admission/admit.ts";
import { auditTrail } from "./admission/audit.ts";
import { type AuthEnv, bearerAuth } from "./auth.ts";
import { limitBodies } from "./body-limit.ts";
import type { ApiKey } from "./config.ts";
import { Executions, stateUnavailable } from "./executions/executions.ts";
import { idempotency } from "./idempotency.ts";
import type { Metrics } from "./metrics.ts";
import { type OpenApiDocument, openApiDocument } from "./openapi.ts";
import type { Replicas } from "./replicas.ts";
import { type LogEnv, type RequestScope, requestLog } from "./request-log.ts";
import { adminRoutes } from "./routes/admin.ts";
import { checkpointRoutes } from "./routes/checkpoints.ts";
import { dashboardRoutes } from "./routes/dashboard.ts";
import { docsRoutes } from "./routes/docs.ts";
import { egressRoutes } from "./routes/egress.ts";
import { execJob, execRoutes } from "./routes/exec.ts";
import { executionRoutes } from "./routes/executions.ts";
import { healthRoutes } from "./routes/health.ts";
import { mcpRoutes } from "./routes/mcp.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { pistonRoutes } from "./routes/piston.ts";
import { profileRoutes } from "./routes/profiles.ts";
import { type WorkspaceRouteDeps, workspaceExecJob, workspaceRoutes } from "./routes/workspaces.ts";
import { fromValidatorError, validationHook } from "./validate.ts";

export interface AppDeps {
  executor: Executor;
  client: ContainerClient;
  profiles: ReadonlyMap<string, LoadedProfile>;
  /** Keys with the default scopes, used when no `access` is given (tests, keys from the environment). */
  keys?: readonly ApiKey[];
  /** The policy in force, with its rate limits, quotas, approvals, stop switch and audit log. */
  access?: Access;
  maxBodyBytes: number;
  logger: Logger;
  workspaces: WorkspaceRouteDeps;
  /** The engine's hardening checks, re-run by /readyz. */
  readiness?: () => Promise<Check[]>;
  /** Serves GET /metrics and counts requests and error codes (api/metrics.ts). */
  metrics?: Metrics | undefined;
  /** /metrics without a key (AIRLOCK_METRICS_PUBLIC): for a scraper on a private network. */
  metricsPublic?: boolean | undefined;
  /** Carries the request id into lines logged by the root logger (api/request-log.ts). */
  requestScope?: RequestScope | undefined;
  /** Executions, their output, idempotency entries: state that outlives a request (core/state.ts). */
  state: StateStore;
  /** This gateway's instance id, written on the executions it runs. */
  instanceId: string;
  /** How long an Idempotency-Key's answer is kept (default 7 days: AIRLOCK_EXECUTION_RETENTION). */
  retentionMs?: number | undefined;
  /** Each answer says where its time went, phase by phase, in a Server-Timing header (AIRLOCK_SERVER_TIMING). */
  serverTiming?: boolean | undefined;
  /** One of several gateways on a shared store: workspaces on other engines are forwarded. */
  replicas?: Replicas | undefined;
}

/** 499: nginx's "client closed request"; the client is gone and never sees it. */
const CLIENT_CLOSED = 499;

export function createApp(deps: AppDeps) {
  const access =
    deps.access ??
    createAccess({
      policy: new PolicyHolder(environmentPolicy(deps.keys ?? [])),
      client: deps.client,
      approvals: deps.state.approvals,
      audit: deps.state.audit,
      instanceId: deps.instanceId,
    });
  const executions = new Executions({
    state: deps.state,
    instanceId: deps.instanceId,
    warn: (message, err) => deps.logger.warn({ err }, message),
  });
  // Made here when the caller wires none (tests that never take one).
  const checkpoints =
    deps.workspaces.checkpoints ??
    new Checkpoints(deps.workspaces.store, deps.client, DEFAULT_CHECKPOINT_LIMITS);
  // Every /v1 route asks this one admission whether it may go ahead (api/admission/admit.ts).
  const admission = new Admission({
    access,
    profiles: deps.profiles,
    workspaces: deps.workspaces.store,
    executions,
    jobs: {
      exec: execJob(deps),
      "workspace.exec": workspaceExecJob({
        ...deps.workspaces,
        checkpoints,
        profiles: deps.profiles,
      }),
    },
  });
  const app = new OpenAPIHono<AuthEnv & LogEnv>({ defaultHook: validationHook });
  if (deps.serverTiming === true) app.use(serverTiming);
  app.use(requestId());
  app.use(requestLog(deps.logger, { scope: deps.requestScope, metrics: deps.metrics }));
  app.route("/", healthRoutes(deps.client, deps.profiles, deps.readiness));
  // Made at the first request, once every route below is registered: it depends only on code.
  let document: OpenApiDocument | undefined;
  app.route(
    "/",
    docsRoutes(() => {
      document ??= openApiDocument(app as unknown as OpenAPIHono, pkg.version);
      return document;
    }),
  );
  app.route("/", dashboardRoutes());

  const limitBody = limitBodies(deps.maxBodyBytes);
  for (const path of ["/v1/*", "/mcp", "/api/v2/*"]) app.use(path, limitBody);
  // First: a workspace on another engine is that engine's gateway's request,
  // audited, authenticated and admitted there, once.
  if (deps.replicas !== undefined) {
    app.use("/v1/workspaces/*", deps.replicas.forward());
    app.use("/v1/approvals/*", deps.replicas.forward());
    app.use("/v1/executions/*", deps.replicas.forward());
  }
  // Before authentication, so refused keys are audited too.
  app.use("/v1/*", auditTrail(access.deps.audit));
  // Read on every request, so a policy reload takes effect at once.
  const keys = () => access.deps.policy.current().keys;
  app.use("/v1/*", bearerAuth(keys));
  app.use("/mcp", bearerAuth(keys));
  // After authentication: keys belong to the caller's tenant.
  app.use(
    "/v1/*",
    idempotency({
      state: deps.state,
      executions,
      instanceId: deps.instanceId,
      ttlMs: deps.retentionMs ?? 7 * 24 * 3600_000,
      warn: (message, err) => deps.logger.warn({ err }, message),
    }),
  );
  if (deps.replicas !== undefined) {
    const place = deps.replicas.place();
    app.use("/v1/workspaces", place);
    app.use("/v1/workspaces/*", place);
  }
  app.route("/", profileRoutes(admission));
  app.route(
    "/",
    execRoutes({ executor: deps.executor, profiles: deps.profiles, admission, executions }),
  );
  app.route(
    "/",
    workspaceRoutes({ ...deps.workspaces, admission, profiles: deps.profiles, executions }),
  );
  app.route("/", checkpointRoutes({ checkpoints, admission }));
  app.route("/", executionRoutes(admission, executions));
  app.route("/", egressRoutes(admission));
  app.route(
    "/",
    adminRoutes(admission, () => ({
      running: deps.executor.running,
      waiting: deps.executor.waiting,
    })),
  );
  // MCP and Piston run nothing themselves: they call the routes above through
  // this app, in-process, with the caller's key, so every one of their
  // operations is admitted by the same admit(plan) (scopes, profiles, rate
  // limits, quotas, approvals, the stop) and audited.
  const inProcess = (req: Request) => app.fetch(req);
  app.route("/", mcpRoutes({ fetch: inProcess, version: pkg.version }));
  app.route(
    "/",
    pistonRoutes({
      keys,
      profiles: deps.profiles,
      fetch: inProcess,
      logger: deps.logger,
    }),
  );
  if (deps.metrics !== undefined) {
    if (deps.metricsPublic !== true) app.use("/metrics", bearerAuth(keys));
    app.route("/", metricsRoutes(deps.metrics, deps.metricsPublic === true));
  }

  app.notFound((c) => {
    const err = new AirlockError("not_found", `no route for ${c.req.method} ${c.req.path}`);
    deps.metrics?.errors.inc({ code: err.code });
    return c.json(err.toBody(), err.status);
  });

  app.onError(async (err, c) => {
    // A client that went away (a job it left, an upload it cut off) is no
    // fault of the gateway's: nobody reads the answer, and it is not internal.
    if (err instanceof JobCancelledError || c.req.raw.signal.aborted) {
      c.set("errorCode", "cancelled");
      deps.metrics?.errors.inc({ code: "cancelled" });
      return c.body(null, CLIENT_CLOSED as 200);
    }
    const known =
      err instanceof AirlockError
        ? err
        : err instanceof StoreUnavailableError
          ? stateUnavailable(err)
          : ((await fromValidatorError(err, c)) ??
            new AirlockError("internal", "airlock failed to handle the request", { cause: err }));
    c.set("errorCode", known.code);
    deps.metrics?.errors.inc({ code: known.code });
    const log = c.get("log") ?? deps.logger.child({ requestId: c.get("requestId") });
    const fields = { code: known.code, err: known.cause ?? err };
    if (known.code === "internal") log.error(fields, "request failed");
    else log.debug(fields, known.message);
    if (known.retryAfterSeconds !== undefined)
      c.header("Retry-After", String(known.retryAfterSeconds));
    return c.json(known.toBody(), known.status);
  });
  return app;
}

export type App = ReturnType<typeof createApp>;

/**
 * Times the request's phases (core/timing.ts) and sends them as Server-Timing.
 * The last phase, `answer`, ends when the response is made (a JSON body is
 * serialized by then; an event stream has only begun).
 */
const serverTiming: MiddlewareHandler = async (c, next) => {
  const clock = new PhaseClock();
  await timed(clock, next);
  clock.mark("answer");
  c.res.headers.set("Server-Timing", clock.header());
};
