// A whole app over the fake executor, with metrics as main.ts builds it, for unit
// tests that go through HTTP without Docker. Without a policy the workspace
// store is absent (its routes are not exercised); with one (gatedApp), a
// policy file's access and one workspace, FAKE_WORKSPACE, that only looks up
// and runs jobs.
import { pino } from "pino";
import { Registry } from "prom-client";
import { createAccess } from "../../api/admission/access.ts";
import { createApp } from "../../api/app.ts";
import { hashKey } from "../../api/config.ts";
import { createMetrics } from "../../api/metrics.ts";
import { AirlockError } from "../../core/errors.ts";
import type { LoadedProfile } from "../../core/profile.ts";
import type { ClusterRecords, StateStore } from "../../core/state.ts";
import type { ContainerClient } from "../../executor/docker.ts";
import type { WorkspaceFiles } from "../../executor/workspace-files.ts";
import type { WorkspaceStore } from "../../executor/workspaces.ts";
import { PolicyHolder, parsePolicy } from "../../policies/access/load.ts";
import { loadProfiles } from "../../policies/load.ts";
import { FakeExecutor } from "./fake-executor.ts";
import { tempState } from "./temp-state.ts";

export const FAKE_KEY = "key-for-tenant-a-0123456789";
/** gatedApp's keys: tenant a's with every scope but admin and network, with exec only, with files.read only; an admin's. */
export const GATED_KEYS = {
  agent: FAKE_KEY,
  runner: "runner-key-of-tenant-a-0123456789",
  reader: "reader-key-of-tenant-a-0123456789",
  admin: "admin-key-for-tests-0123456789",
};
export const FAKE_WORKSPACE = "ws_fake";

const fakeEngine = () =>
  ({
    ping: async () => {},
    imagePresent: async () => true,
    listVolumes: async () => [],
    createVolume: async () => {},
    removeVolume: async () => {},
  }) as unknown as ContainerClient;

/** Tenant b's key, for the "another tenant's" cases. */
export const FAKE_KEY_B = "key-for-tenant-b-0123456789";

export interface FakeAppOptions {
  /** The state store (default: a fresh one in a temporary directory). */
  state?: StateStore;
  /** Answers carry Server-Timing. */
  serverTiming?: boolean;
}

/**
 * The versions a real gateway reads from its images' labels (images/versions.ts):
 * no engine here, so the ones Debian's packages and the node image had when written.
 */
const IMAGE_VERSIONS: Record<string, string> = {
  python: "3.11.2",
  javascript: "24.21.0",
  typescript: "24.21.0",
  bash: "5.2.15",
};

function versioned(profiles: Map<string, LoadedProfile>): Map<string, LoadedProfile> {
  for (const p of profiles.values()) {
    p.versions = Object.fromEntries(
      Object.keys(p.languages).map((l) => [l, IMAGE_VERSIONS[l] ?? "1.0.0"]),
    );
  }
  return profiles;
}

export function fakeApp(options: FakeAppOptions = {}) {
  const executor = new FakeExecutor();
  const state = options.state ?? tempState().state;
  const app = createApp({
    executor,
    client: fakeEngine(),
    profiles: versioned(loadProfiles()),
    keys: [
      { tenant: "a", hash: hashKey(FAKE_KEY) },
      { tenant: "b", hash: hashKey(FAKE_KEY_B) },
    ],
    maxBodyBytes: 64 * 1024,
    // As in production (main.ts), so /metrics is registered and documented.
    metrics: createMetrics(new Registry()),
    logger: pino({ level: "silent" }),
    workspaces: {
      store: {} as WorkspaceStore,
      files: {} as WorkspaceFiles,
      defaultProfile: "shell",
    },
    state,
    instanceId: "fake",
    serverTiming: options.serverTiming,
  });
  return { app, executor, state };
}

/**
 * The app under a policy that holds every job asking for more than 5 s for an
 * admin's approval (`requireApproval` in `extra` replaces that rule; `rateLimits`
 * are tenant a's).
 */
export function gatedApp(
  extra: {
    requireApproval?: unknown;
    rateLimits?: unknown;
    /** Tenant a's quotas. */
    quotas?: unknown;
    state?: StateStore;
    /** Counters kept in a shared store, as a replica keeps them (a state's `cluster`). */
    cluster?: ClusterRecords | undefined;
    instanceId?: string;
  } = {},
) {
  const h = (key: string) => `sha256:${hashKey(key).toString("hex")}`;
  const policy = {
    tenants: {
      a: {
        requireApproval: extra.requireApproval ?? { jobsOverSeconds: 5 },
        rateLimits: extra.rateLimits ?? {},
        ...(extra.quotas === undefined ? {} : { quotas: extra.quotas }),
        keys: [
          {
            id: "agent",
            hash: h(GATED_KEYS.agent),
            scopes: ["exec", "workspaces", "files.read", "files.write"],
          },
          { id: "runner", hash: h(GATED_KEYS.runner), scopes: ["exec"] },
          { id: "reader", hash: h(GATED_KEYS.reader), scopes: ["files.read"] },
        ],
      },
      ops: { keys: [{ id: "root", hash: h(GATED_KEYS.admin), scopes: ["admin"] }] },
    },
  };
  const client = fakeEngine();
  const state = extra.state ?? tempState().state;
  const access = createAccess({
    policy: new PolicyHolder(parsePolicy("test-policy.json", JSON.stringify(policy))),
    client,
    approvals: state.approvals,
    audit: state.audit,
    instanceId: extra.instanceId ?? "gated",
    cluster: extra.cluster,
  });
  const executor = new FakeExecutor();
  const profiles = versioned(loadProfiles());
  const app = createApp({
    executor,
    client,
    profiles,
    access,
    maxBodyBytes: 64 * 1024,
    logger: pino({ level: "silent" }),
    workspaces: {
      store: fakeWorkspaceStore(executor, profiles.get("shell") as LoadedProfile),
      files: {} as WorkspaceFiles,
      defaultProfile: "shell",
    },
    state,
    instanceId: extra.instanceId ?? "gated",
  });
  return { app, executor, access, state };
}

/** Tenant a's one workspace: looked up by admission, its jobs run on the fake executor. */
function fakeWorkspaceStore(executor: FakeExecutor, profile: LoadedProfile): WorkspaceStore {
  const find = (tenant: string, id: string) => {
    if (tenant !== "a" || id !== FAKE_WORKSPACE) {
      throw new AirlockError("not_found", `workspace ${JSON.stringify(id)} does not exist`);
    }
  };
  const at = new Date(0).toISOString();
  return {
    get: async (tenant: string, id: string) => {
      find(tenant, id);
      return { id, profile: profile.name, createdAt: at, lastUsedAt: at, expiresAt: at };
    },
    exec: async (tenant, id, build, options) => {
      find(tenant, id);
      const ref = { id, volume: `vol-${id}`, sizeCapBytes: 1 << 30 };
      return executor.run(build(ref, profile), options);
    },
  } as Pick<WorkspaceStore, "get" | "exec"> as WorkspaceStore;
}
