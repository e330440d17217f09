// Composition root: env → config → policy → profiles → state store (what this
// instance left running before is marked lost) → Docker client → images →
// hardening checks → access (the policy's machinery) → executor (metered, with
// a graceful stop) → reaper → app → serve (HTTP or HTTPS). SIGHUP reloads the
// policy. SIGTERM/SIGINT stop accepting, let running jobs
// finish within AIRLOCK_SHUTDOWN_GRACE_MS, kill the rest (they answer 503
// shutting_down), and remove everything this instance created.
// First: keeps dependencies from loading modules they would never use here (see the file).
import "./lazy-modules.ts";
import { createServer as createHttpsServer } from "node:https";
import { serve } from "@hono/node-server";
import { pino } from "pino";
import { Registry } from "prom-client";
import { createAccess } from "./api/admission/access.ts";
import { createApp } from "./api/app.ts";
import { ConfigError, hashKey, loadConfig } from "./api/config.ts";
import { recoverState } from "./api/executions/executions.ts";
import { createMetrics } from "./api/metrics.ts";
import { Replicas } from "./api/replicas.ts";
import { createRequestScope, requestIdMixin } from "./api/request-log.ts";
import { StoreUnavailableError, StoreVersionError } from "./core/state.ts";
import { connectEngine, DockerodeNetworks } from "./executor/docker.ts";
import { openEgress } from "./executor/egress-network.ts";
import { createGatewayCore } from "./executor/gateway.ts";
import { engineChecks, failures, formatChecks, sandboxChecks } from "./executor/hardening.ts";
import { meterClient } from "./executor/metered-client.ts";
import { ensureImages } from "./images/build.ts";
import { readVersions } from "./images/versions.ts";
import { PolicyError, PolicyHolder } from "./policies/access/load.ts";
import { environmentPolicy } from "./policies/access/schema.ts";
import { loadProfiles, ProfileError } from "./policies/load.ts";
import { redact } from "./state/pg-db.ts";
import { defaultDataDir, openSqliteState } from "./state/sqlite.ts";

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const requestScope = createRequestScope();
  const logger = pino({ level: config.logLevel, mixin: requestIdMixin(requestScope) });
  const metrics = createMetrics(new Registry());
  const profiles = loadProfiles({ extraDir: config.profilesDir, only: config.profiles });
  if (!profiles.has(config.defaultProfile)) {
    throw new ConfigError(
      `AIRLOCK_DEFAULT_PROFILE=${config.defaultProfile} names no loaded profile` +
        (config.profiles === undefined ? "" : ` (AIRLOCK_PROFILES=${config.profiles.join(",")})`),
    );
  }
  // The generated key is the loopback operator's own: it may also use the admin routes.
  const policy =
    config.policyFile === undefined
      ? new PolicyHolder(
          environmentPolicy(
            config.keys,
            config.generatedKey === undefined ? [] : [hashKey(config.generatedKey)],
          ),
        )
      : PolicyHolder.fromFile(config.policyFile);
  const audit = pino.destination({
    dest: config.auditFile === "-" ? 1 : config.auditFile,
    mkdir: true,
    sync: false,
  });
  const dataDir = config.dataDir ?? defaultDataDir();
  const onStoreError = (err: unknown) =>
    logger.error({ err }, "writing execution output to the state store failed");
  const shared = config.replicas;
  const state =
    shared === undefined
      ? await openSqliteState({ dataDir, onError: onStoreError })
      : // Loaded only here: the PostgreSQL driver adds ~8 MB to a gateway that never uses it.
        await import("./state/pg.ts").then(({ openPgState }) =>
          openPgState({ url: shared.stateUrl, onError: onStoreError }),
        );
  // Jobs this instance ran when it died cannot be running now: they end `lost`.
  const recovered = await recoverState(state, config.instanceId);
  const where = shared === undefined ? { dataDir } : { stateUrl: redact(shared.stateUrl) };
  logger.info({ ...where, ...recovered }, "state store open");
  const engine = connectEngine();
  const docker = engine.docker;
  const client = meterClient(engine.client, metrics);
  try {
    await client.ping();
  } catch (err) {
    throw new ConfigError(
      `the Docker engine does not answer (${(err as Error).message}); start dockerd or set DOCKER_HOST`,
    );
  }
  const images = [...new Set([...profiles.values()].map((p) => p.image))];
  if (config.buildImages === "missing") {
    await ensureImages(docker, images, { log: (line) => process.stderr.write(`${line}\n`) });
  }
  await readVersions(docker, profiles);

  // Refuse to run code with less isolation than promised (SECURITY.md).
  const checks = [
    ...(await engineChecks(docker, profiles)),
    ...(await sandboxChecks(client, profiles, config.instanceId)),
  ];
  const refusal = failures(checks);
  if (refusal !== undefined) throw new ConfigError(`${refusal}\n${formatChecks(checks)}`);
  logger.info({ checks: checks.map((c) => c.name) }, "hardening checks passed");

  const access = createAccess({
    policy,
    client,
    approvals: state.approvals,
    instanceId: config.instanceId,
    auditWrite: (line) => audit.write(line),
    audit: state.audit,
    cluster: shared === undefined ? undefined : state.cluster,
    onAuditError: (err) =>
      logger.error({ err }, "keeping an audit record in the state store failed"),
  });
  // A stop made before a restart (or by another gateway on this engine) holds from the start.
  await access.deps.stop.refresh();
  const stops = access.deps.stop.state();
  const replicas =
    shared === undefined || state.cluster === undefined
      ? undefined
      : new Replicas({
          cluster: state.cluster,
          state,
          instanceId: config.instanceId,
          engineId: shared.engineId ?? (await docker.info()).ID,
          url: shared.advertiseUrl,
          peerSecret: shared.peerSecret,
          heartbeatMs: shared.heartbeatMs,
          gatewayTimeoutMs: shared.gatewayTimeoutMs,
          refreshStops: () => access.deps.stop.refresh(),
          log: (level, fields, message) => logger[level](fields, message),
        });
  if (stops.all !== null || stops.tenants.length > 0)
    logger.warn(stops, "an emergency stop is in force");
  // Jobs granted a network reach it through the egress proxy; without one
  // (no openssl, no node image for the relay) they are refused, nothing else is.
  const egress = await openEgress({
    client,
    networks: new DockerodeNetworks(docker),
    dataDir,
    instanceId: config.instanceId,
    relayImage: profiles.get("node")?.image ?? "airlock/node:1",
    relayNetwork: config.egressRelayNetwork,
    caVolume: config.egressCaVolume,
    // The longest a job can hold its network: its holder's deadline (the reaper's) must not cut it.
    jobMaxMs:
      Math.max(
        0,
        ...[...profiles.values()].map(
          (p) => p.limits.max.timeoutMs + p.compileLimits.max.timeoutMs,
        ),
      ) + config.orphanGraceMs,
    onConnection: (entry) => metrics.egress(entry),
    warn: (message, err) => logger.warn({ err }, message),
  }).catch((err: unknown) => {
    logger.warn({ err }, "the egress proxy cannot run: jobs that ask for networks are refused");
    return undefined;
  });
  const {
    executor,
    stop: stopExecutor,
    pool,
    store,
    files,
    checkpoints,
  } = createGatewayCore({
    client,
    profiles,
    instanceId: config.instanceId,
    concurrency: config.concurrency,
    maxQueue: config.maxQueue,
    orphanGraceMs: config.orphanGraceMs,
    maxBodyBytes: config.maxBodyBytes,
    workspaceTtlMs: config.workspaceTtlMs,
    workspacesPerTenant: config.workspacesPerTenant,
    workspaceMaxBytes: config.workspaceMaxBytes,
    checkpointLimits: config.checkpointLimits,
    poolMin: config.poolMin,
    poolMax: config.poolMax,
    poolMaxParkMs: config.poolMaxParkMs,
    poolTotal: config.poolTotal,
    poolIdleMs: config.poolIdleMs,
    poolWarm: config.poolWarm,
    workspaceSizeCapFor: (tenant) => access.workspaceBytes(tenant),
    manifestStore: state.manifests,
    warn: (message, err) => logger.warn({ err }, message),
    metrics,
    egress: egress?.egress,
  });
  const reaped = await executor.reap(true);
  if (reaped.containers + reaped.volumes > 0)
    logger.info(reaped, "removed leftovers of earlier runs");
  const housekeeping = async () => {
    await access.deps.stop.refresh();
    await executor.reap(false);
    const expired = await store.collectExpired();
    if (expired > 0) logger.info({ expired }, "removed idle workspaces past their TTL");
    const purged = await state.purge({
      executionsMs: config.executionRetentionMs,
      auditMs: config.executionRetentionMs,
      auditKeepAtMost: config.auditMemory,
    });
    if (purged.executions + purged.idempotency + purged.approvals > 0) {
      logger.info(purged, "removed executions, idempotency entries and approvals past retention");
    }
  };
  await housekeeping();
  // Registered once it can serve: siblings forward its engine's workspaces here from now on.
  await replicas?.start();
  // After the start-up reap, which removes this instance's leftovers, parked ones included.
  pool?.start();
  const reaper = setInterval(() => {
    housekeeping().catch((err: unknown) =>
      logger.warn({ err }, "reaping orphans or expired workspaces failed"),
    );
  }, config.reapIntervalMs);
  reaper.unref();

  const app = createApp({
    executor,
    client,
    profiles,
    access,
    maxBodyBytes: config.maxBodyBytes,
    logger,
    workspaces: { store, files, checkpoints, defaultProfile: config.defaultProfile },
    readiness: () => engineChecks(docker, profiles),
    metrics,
    metricsPublic: config.metricsPublic,
    serverTiming: config.serverTiming,
    requestScope,
    state,
    instanceId: config.instanceId,
    retentionMs: config.executionRetentionMs,
    replicas,
  });
  const tls = config.tls;
  const scheme = tls === undefined ? "http" : "https";
  const listen = { fetch: app.fetch, port: config.port, hostname: config.host };
  const options =
    tls === undefined
      ? listen
      : {
          ...listen,
          createServer: createHttpsServer,
          serverOptions: { cert: tls.cert, key: tls.key },
        };
  const server = serve(options, (info) => {
    logger.info(
      {
        scheme,
        host: config.host,
        port: info.port,
        instanceId: config.instanceId,
        profiles: [...profiles.keys()],
      },
      "airlock is listening",
    );
    if (config.generatedKey !== undefined) {
      process.stdout.write(
        `\nNo API keys configured: listening on ${config.host} only, with this generated key (shown once):\n\n` +
          `  AIRLOCK_KEY=${config.generatedKey}\n\n` +
          `  curl -s ${scheme}://${config.host}:${info.port}/v1/exec -H "Authorization: Bearer $AIRLOCK_KEY" \\\n` +
          `    -H 'Content-Type: application/json' -d '{"profile":"python","code":"print(6*7)"}'\n\n` +
          "Set AIRLOCK_API_KEYS=tenant:key (or AIRLOCK_API_KEYS_FILE) to choose your own keys.\n\n",
      );
    }
  });

  let stopping = false;
  const closed = new Promise<void>((resolve) => server.once("close", () => resolve()));
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info(
      { signal, graceMs: config.shutdownGraceMs, running: executor.running },
      "shutting down: no new connections; running jobs get the grace period",
    );
    clearInterval(reaper);
    server.close();
    stopExecutor(config.shutdownGraceMs)
      .then(async (report) => {
        // Let the answers of the last jobs (503 shutting_down included) reach their clients.
        const idle = server as { closeIdleConnections?: () => void };
        idle.closeIdleConnections?.();
        await Promise.race([closed, new Promise((r) => setTimeout(r, 5000).unref())]);
        // The idle egress networks (the relay went with the executor's leftovers).
        await egress?.close().catch((err: unknown) => logger.warn({ err }, "closing egress"));
        await replicas
          ?.stop()
          .catch((err: unknown) => logger.warn({ err }, "leaving the gateways' registry"));
        await state
          .close()
          .catch((err: unknown) => logger.error({ err }, "closing the state store"));
        logger.info(report, "stopped cleanly");
        try {
          audit.flushSync();
        } catch {
          // Not open yet: nothing was written.
        }
        process.exit(0);
      })
      .catch((err: unknown) => {
        logger.error({ err }, "shutdown failed");
        process.exit(1);
      });
  };
  // SIGHUP: reload the policy (a bad file keeps the old one) and reopen the audit file (log rotation).
  process.on("SIGHUP", () => {
    const outcome = policy.reload();
    if (outcome.ok) logger.info(outcome, "policy reloaded");
    else logger.error(outcome, "policy NOT reloaded; the old one stays in force");
    if (config.auditFile !== "-") audit.reopen();
  });
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

// Only as the entry point: compile-cache.ts imports this module to fill the cache.
if (import.meta.main)
  main().catch((err: unknown) => {
    if (
      err instanceof ConfigError ||
      err instanceof ProfileError ||
      err instanceof PolicyError ||
      err instanceof StoreUnavailableError ||
      err instanceof StoreVersionError
    ) {
      process.stderr.write(`airlock: ${err.message}\n`);
    } else {
      process.stderr.write(`airlock: failed to start: ${(err as Error).stack ?? String(err)}\n`);
    }
    process.exit(1);
  });
