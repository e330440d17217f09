// What the socket proxy lets through to the Docker engine: exactly the calls
// airlock makes (executor/docker.ts, executor/hardening.ts, the readiness
// check), and only in the shape airlock makes them. An allow-list, not a
// deny-list: a create body may hold only the fields airlock sends
// (executor/container-spec.ts), each with the value airlock gives it or one as
// strict (non-root numeric user, one of the shipped seccomp profiles, network
// none, one volume at /workspace…), so a compromised gateway behind the proxy
// can do no more with the engine than airlock itself does. The proxy forwards
// the body as parsed here, re-serialised, never the caller's bytes: the engine
// reads JSON keys without regard to case (`"user"` sets User) and takes the
// last of duplicate keys, so what was checked must be what it gets.
// Image builds are not allowed: the gateway image runs with
// AIRLOCK_BUILD_IMAGES=never, and images are built on the host (npm run images).
// Networks (egress, executor/egress-network.ts): only airlock-egress-* ones,
// internal and with no host address, made, joined by airlock's relay and
// removed; a sandbox joins one of them (directly, or in the namespace of a
// holder made on it) or none, and its only bind mounts are the egress CA,
// read-only, at fixed paths; the relay runs only its script, a holder only sleeps.
import { z } from "zod";
import { WORKSPACE_DIR } from "../core/paths.ts";
import { LABEL_CHECKPOINT, LABEL_CHECKPOINT_META } from "../executor/checkpoint-volumes.ts";
import { LABEL_INSTANCE } from "../executor/container-spec.ts";
import {
  CA_BUNDLE_PATH,
  CA_CERT_PATH,
  CA_DIR_PATH,
  EGRESS_HOLDER,
  EGRESS_NETWORK,
  HOLDER_CMD,
  LABEL_EGRESS,
  RELAY_NETWORK,
  RELAY_SCRIPT,
  RUNSC_NETWORK_RUNTIME,
} from "../executor/egress-relay.ts";
import { LABEL_TOUCH, LABEL_WORKSPACE } from "../executor/workspaces.ts";
import { LABEL_STOP } from "../policies/access/stop.ts";
import { matchSeccomp, type ShippedSeccomp } from "./seccomp-profiles.ts";

export type Rule =
  /** Forward as is, without a body. */
  | { kind: "allow" }
  /**
   * Forward once the container is known to carry the airlock label: without a
   * body, with the caller's tar (archive upload), or with a checked limits update.
   */
  | { kind: "container"; id: string; body: "none" | "tar" | "update" }
  | { kind: "volume"; name: string }
  /** Forward the body as the check re-serialises it. */
  | { kind: "create-container" }
  | { kind: "create-volume" }
  | { kind: "create-network" }
  /** An egress network: removed (no body), or joined or left by the relay (an endpoint body). */
  | { kind: "network"; name: string; body: "none" | "endpoint" }
  | { kind: "deny"; reason: string };

const VERSION = /^\/v(\d+)\.(\d+)(?=\/)/;
/** The engine API airlock needs (executor/hardening.ts). Older versions read a HostConfig from a start body. */
const MIN_API = [1, 41] as const;

const CONTAINER_OPS: Record<string, Record<string, "none" | "tar" | "update">> = {
  start: { POST: "none" },
  attach: { POST: "none" },
  update: { POST: "update" },
  wait: { POST: "none" },
  kill: { POST: "none" },
  json: { GET: "none" },
  stats: { GET: "none" },
  archive: { GET: "none", HEAD: "none", PUT: "tar" },
};

/** The rule for one request line; `rawPath` is the URL path without the query. */
export function ruleFor(method: string, rawPath: string): Rule {
  const version = VERSION.exec(rawPath);
  if (version !== null) {
    const [major, minor] = [Number(version[1]), Number(version[2])];
    if (major < MIN_API[0] || (major === MIN_API[0] && minor < MIN_API[1])) {
      return {
        kind: "deny",
        reason: `API version ${major}.${minor} is older than ${MIN_API.join(".")}, the one airlock speaks`,
      };
    }
  }
  const path = rawPath.slice(version?.[0].length ?? 0);
  const is = (m: string, p: string | RegExp) =>
    method === m && (typeof p === "string" ? path === p : p.test(path));
  if (is("GET", "/_ping") || is("HEAD", "/_ping")) return { kind: "allow" };
  if (is("GET", "/version") || is("GET", "/info")) return { kind: "allow" };
  if (is("GET", /^\/images\/[^?#]+\/json$/)) return { kind: "allow" };
  if (is("GET", "/containers/json") || is("GET", "/volumes")) return { kind: "allow" };
  if (is("POST", "/containers/create")) return { kind: "create-container" };
  if (is("POST", "/volumes/create")) return { kind: "create-volume" };
  // The default bridge's gateway, or the subnet of the network a gateway in a
  // container is on (where the relay reaches the proxy), and the egress networks' list.
  if (is("GET", "/networks/bridge") || is("GET", "/networks")) return { kind: "allow" };
  const relayNet = /^\/networks\/([^/]+)$/.exec(path);
  if (method === "GET" && relayNet !== null && RELAY_NETWORK.test(relayNet[1] as string))
    return { kind: "allow" };
  if (is("POST", "/networks/create")) return { kind: "create-network" };
  const network = /^\/networks\/([^/]+)(?:\/(connect|disconnect))?$/.exec(path);
  if (network !== null && EGRESS_NETWORK.test(network[1] as string)) {
    const name = network[1] as string;
    if (network[2] === undefined && method === "DELETE")
      return { kind: "network", name, body: "none" };
    if (network[2] !== undefined && method === "POST")
      return { kind: "network", name, body: "endpoint" };
  }
  const container = /^\/containers\/([A-Za-z0-9][A-Za-z0-9_.-]*)(?:\/([a-z]+))?$/.exec(path);
  if (container !== null) {
    const [, id, op] = container as unknown as [string, string, string | undefined];
    if (op === undefined && method === "DELETE") return { kind: "container", id, body: "none" };
    const body = op === undefined ? undefined : CONTAINER_OPS[op]?.[method];
    if (body !== undefined) return { kind: "container", id, body };
  }
  const volume = /^\/volumes\/([A-Za-z0-9][A-Za-z0-9_.-]*)$/.exec(path);
  if (volume !== null && (method === "GET" || method === "DELETE")) {
    return { kind: "volume", name: volume[1] as string };
  }
  return { kind: "deny", reason: `${method} ${path} is not a call airlock makes` };
}

/**
 * Airlock's containers carry its instance label, `airlock` (container-spec.ts).
 * Only that key counts: the sandbox images' own `airlock.image` labels are
 * inherited by any container made from them, airlock's or not.
 */
export function isAirlockContainer(labels: Record<string, string> | null | undefined): boolean {
  return labels != null && Object.hasOwn(labels, LABEL_INSTANCE);
}

/** Job volumes carry `airlock`; workspaces, their touch markers, stop markers and checkpoints their own keys. */
const VOLUME_KEYS = [
  LABEL_INSTANCE,
  LABEL_WORKSPACE,
  LABEL_TOUCH,
  LABEL_STOP,
  LABEL_CHECKPOINT,
  LABEL_CHECKPOINT_META,
];
export function isAirlockVolume(labels: Record<string, string> | null | undefined): boolean {
  return labels != null && VOLUME_KEYS.some((k) => Object.hasOwn(labels, k));
}

/** What a sandbox may mount: a job's volume, a workspace or a checkpoint's data, never a marker. */
export function isMountableVolume(labels: Record<string, string> | null | undefined): boolean {
  return (
    labels != null &&
    [LABEL_INSTANCE, LABEL_WORKSPACE, LABEL_CHECKPOINT].some((k) => Object.hasOwn(labels, k))
  );
}

const positive = z.number().int().positive();
const VOLUME_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;
/** Container names as airlock gives them: `airlock-<job id>`. */
export const CONTAINER_NAME = /^airlock-[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$/;
const emptyMap = (message: string) =>
  z.record(z.string(), z.unknown()).refine((m) => Object.keys(m).length === 0, message);

const Labels = z.record(
  z.string().regex(/^airlock(\.[a-z][a-z0-9_.-]*)?$/, "label keys must be airlock or airlock.*"),
  z.string().max(4096),
);
const ContainerLabels = Labels.refine(
  isAirlockContainer,
  `the container must carry the ${LABEL_INSTANCE} label`,
);

const Mount = z.strictObject({
  Type: z.literal("volume", "only volume mounts are allowed (no bind or tmpfs mounts)"),
  Source: z.string().regex(VOLUME_NAME, "must be a volume name"),
  Target: z.literal(WORKSPACE_DIR, `the volume must be mounted at ${WORKSPACE_DIR}`),
  // Only read by the engine when it makes the volume (a job's own, on first mount).
  VolumeOptions: z
    .strictObject({
      NoCopy: z.boolean(),
      Labels: ContainerLabels,
      DriverConfig: z.strictObject({
        Name: z.literal("local", "only the local volume driver is allowed"),
        Options: emptyMap("volume driver options are not allowed (o=bind mounts a host path)"),
      }),
    })
    .optional(),
});
export type Mount = z.infer<typeof Mount>;

/** The egress CA from the gateway's data directory (`…/egress/<file>`), read-only, where the sandbox expects it. */
function CaMount(target: string) {
  const file = target === CA_BUNDLE_PATH ? "ca-bundle.pem" : "ca.pem";
  return z.strictObject({
    Type: z.literal("bind"),
    Source: z
      .string()
      .regex(
        new RegExp(`^(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*/egress/${file.replace(".", "\\.")}$`),
        `must be <data dir>/egress/${file}`,
      ),
    Target: z.literal(target),
    ReadOnly: z.literal(true, "the CA is mounted read-only"),
  });
}

/**
 * The egress CA's volume (a gateway in a container keeps the CA's public
 * certificates in a volume of its own), read-only at /etc/airlock. The proxy
 * checks that the volume carries airlock.egress=ca.
 */
const CaVolumeMount = z.strictObject({
  Type: z.literal("volume"),
  Source: z.string().regex(VOLUME_NAME, "must be a volume name"),
  Target: z.literal(CA_DIR_PATH),
  ReadOnly: z.literal(true, "the CA is mounted read-only"),
});

/**
 * A checkpoint's system job mounts more volumes beside /workspace
 * (executor/checkpoints.ts): existing ones only (no VolumeOptions, so the
 * engine makes none), under /airlock/, each still held to isMountableVolume.
 */
const ExtraMount = z.strictObject({
  Type: z.literal("volume", "only volume mounts are allowed (no bind or tmpfs mounts)"),
  Source: z.string().regex(VOLUME_NAME, "must be a volume name"),
  Target: z
    .string()
    .regex(
      /^\/airlock\/(?:src|dst|d\d{1,3})$/,
      "a further volume goes at /airlock/src, /airlock/dst or /airlock/d<n>",
    ),
  ReadOnly: z.boolean().optional(),
});

const NO_NEW_PRIVILEGES = "no-new-privileges:true";
const SECCOMP = "seccomp=";

const HostConfig = z
  .strictObject({
    Memory: positive.optional(),
    MemorySwap: positive.optional(),
    NanoCpus: positive.optional(),
    PidsLimit: positive.optional(),
    // none even where a profile allows a network, or the job's own egress
    // network (airlock-egress-*, internal, only the relay on it besides), or
    // the namespace of that network's holder (the proxy checks the holder).
    NetworkMode: z
      .string()
      .refine(
        (mode) => mode === "none" || EGRESS_NETWORK.test(mode) || holderOf(mode) !== undefined,
        "NetworkMode must be none, an airlock-egress-* network or container:airlock-egress-holder-*",
      ),
    ReadonlyRootfs: z.literal(true, "the root filesystem must be read-only"),
    Tmpfs: z
      .strictObject({
        "/tmp": z
          .string()
          // exec: a compiled language's profile runs its build output from /tmp (policies/profiles).
          .regex(
            /^rw,(exec,)?nosuid,nodev,size=\d+m,mode=1777$/,
            "must be rw,[exec,]nosuid,nodev,size=<n>m,mode=1777",
          ),
      })
      .optional(),
    ShmSize: positive.optional(),
    Ulimits: z
      .array(
        z.strictObject({
          Name: z.enum(["nofile", "fsize", "core"], "only nofile, fsize and core are set"),
          Soft: z.number().int().nonnegative(),
          Hard: z.number().int().nonnegative(),
        }),
      )
      .max(3)
      .optional(),
    CapDrop: z.tuple([z.literal("ALL", 'CapDrop must be ["ALL"]')], 'CapDrop must be ["ALL"]'),
    SecurityOpt: z.tuple(
      [z.literal(NO_NEW_PRIVILEGES), z.string().startsWith(SECCOMP)],
      `SecurityOpt must be ["${NO_NEW_PRIVILEGES}", "${SECCOMP}<a shipped profile>"]`,
    ),
    Init: z.literal(true).optional(),
    Runtime: z
      .enum(
        ["runc", "runsc", RUNSC_NETWORK_RUNTIME],
        "Runtime must be runc or runsc (runsc-net: on an egress network)",
      )
      .optional(),
    IpcMode: z.literal("private", "IpcMode must be private").optional(),
    // Output is streamed through attach; a logging driver would copy it to the engine's disk.
    LogConfig: z.strictObject({
      Type: z.literal("none", "the logging driver must be none"),
      Config: emptyMap("no logging options"),
    }),
    Mounts: z.union(
      [
        z
          .tuple([Mount])
          .rest(ExtraMount)
          .refine((m) => m.length <= 260, "at most 260 mounts"),
        z.tuple([Mount, CaMount(CA_BUNDLE_PATH), CaMount(CA_CERT_PATH)]),
        z.tuple([Mount, CaVolumeMount]),
      ],
      `a volume at ${WORKSPACE_DIR} first (no bind or tmpfs mounts), and beside it either existing airlock volumes at /airlock/src, /airlock/dst or /airlock/d<n> (a checkpoint's job) or, on an egress network only, the CA read-only`,
    ),
  })
  .refine((h) => h.MemorySwap === h.Memory, "MemorySwap must equal Memory (no swap)")
  .refine(
    // Bind mounts and /etc/airlock are the CA's alone; a checkpoint's further volumes need no network.
    (h) =>
      h.Mounts.every((m) => m.Type === "volume" && m.Target !== CA_DIR_PATH) ||
      h.NetworkMode !== "none",
    "the egress CA is mounted only for a job on an egress network",
  );

/** Exactly the fields of a create body airlock sends (container-spec.ts), shaped as it sends them. */
const ContainerCreateFields = z
  .strictObject({
    // dockerode repeats the query's name in the body; the engine ignores it there.
    name: z.string().regex(CONTAINER_NAME, "must be airlock-<job id>").optional(),
    Image: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$/, "must be an image reference"),
    Cmd: z.array(z.string()).min(1),
    Entrypoint: z.tuple([], "Entrypoint must be empty (the image's own is not run)").optional(),
    Env: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*=/, "must be NAME=value")).optional(),
    WorkingDir: z.literal(WORKSPACE_DIR).optional(),
    // Numeric, so that no name in the image's /etc/passwd can turn out to be root.
    User: z
      .string()
      .regex(/^[1-9]\d*:[1-9]\d*$/, "must be a numeric uid:gid, neither of them 0 (root)"),
    Hostname: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "must be a host name")
      .optional(),
    Labels: ContainerLabels,
    AttachStdin: z.boolean().optional(),
    AttachStdout: z.boolean().optional(),
    AttachStderr: z.boolean().optional(),
    OpenStdin: z.boolean().optional(),
    StdinOnce: z.boolean().optional(),
    Tty: z.literal(false).optional(),
    NetworkDisabled: z.boolean().optional(),
    HostConfig,
  })
  .refine((b) => (b.NetworkDisabled === true) === (b.HostConfig.NetworkMode === "none"), {
    message: "NetworkDisabled must be true exactly when NetworkMode is none",
    path: ["NetworkDisabled"],
  });
export type ContainerCreateBody = z.infer<typeof ContainerCreateFields>;

/**
 * The create-body check for the seccomp profiles the proxy loaded: the body's
 * profile must equal one of them (for its runtime), and the proxy's own text
 * of that profile is what goes on to the engine.
 */
export function containerCreateBody(shipped: readonly ShippedSeccomp[]) {
  return ContainerCreateFields.transform((body, ctx) => {
    const asked = body.HostConfig.Runtime ?? "runc";
    // runsc-net is runsc with a network: the same seccomp profiles.
    const runtime = asked === RUNSC_NETWORK_RUNTIME ? "runsc" : asked;
    const match = matchSeccomp(
      shipped,
      runtime,
      body.HostConfig.SecurityOpt[1].slice(SECCOMP.length),
    );
    if (match === undefined) {
      ctx.issues.push({
        code: "custom",
        input: body.HostConfig.SecurityOpt[1],
        path: ["HostConfig", "SecurityOpt", 1],
        message: `the seccomp profile is none of the shipped ones (policies/seccomp/*.json) for ${runtime}`,
      });
      return z.NEVER;
    }
    const SecurityOpt: [typeof NO_NEW_PRIVILEGES, string] = [
      NO_NEW_PRIVILEGES,
      `${SECCOMP}${match.text}`,
    ];
    return { ...body, HostConfig: { ...body.HostConfig, SecurityOpt } };
  });
}

/** An egress object's labels (egress-network.ts): its instance's, and airlock.egress=<role>. */
function egressLabels(role: "network" | "relay" | "holder", what: string) {
  return Labels.refine(
    (l) => isAirlockContainer(l) && l[LABEL_EGRESS] === role,
    `${what} must carry the ${LABEL_INSTANCE} and ${LABEL_EGRESS}=${role} labels`,
  );
}

/** An egress network as egress-network.ts makes it (executor/docker.ts DockerodeNetworks). */
export const NetworkCreateBody = z.strictObject({
  Name: z.string().regex(EGRESS_NETWORK, "must be airlock-egress-<job id>"),
  Driver: z.literal("bridge"),
  Internal: z.literal(true, "an egress network must be internal (no route out)"),
  CheckDuplicate: z.boolean().optional(),
  IPAM: z.strictObject({
    Driver: z.literal("default"),
    Config: z.tuple([
      z.strictObject({ Subnet: z.string().regex(/^\d+\.\d+\.\d+\.\d+\/\d+$/, "an IPv4 subnet") }),
    ]),
  }),
  Options: z.strictObject({
    "com.docker.network.bridge.inhibit_ipv4": z.literal("true", "the host gets no address on it"),
  }),
  Labels: egressLabels("network", "the network"),
});

/** The relay joining or leaving an egress network. */
export const NetworkEndpointBody = z.strictObject({
  Container: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$/),
  EndpointConfig: z
    .strictObject({
      IPAMConfig: z.strictObject({ IPv4Address: z.string().regex(/^\d+\.\d+\.\d+\.\d+$/) }),
    })
    .optional(),
  Force: z.boolean().optional(),
});

/** What the relay and a holder, airlock's own egress helpers, run under: read-only, no capabilities, bounded, silent. */
const EGRESS_HELPER_HARDENING = {
  ReadonlyRootfs: z.literal(true),
  CapDrop: z.tuple([z.literal("ALL")]),
  SecurityOpt: z.tuple([z.literal(NO_NEW_PRIVILEGES)]),
  Memory: positive,
  PidsLimit: positive,
  LogConfig: z.strictObject({ Type: z.literal("none"), Config: emptyMap("no logging options") }),
};

/** The relay (egress-network.ts): on the default bridge, running only RELAY_SCRIPT. */
export const RelayCreateBody = z.strictObject({
  name: z
    .string()
    .regex(/^airlock-egress-relay-[A-Za-z0-9_.-]{1,100}$/)
    .optional(),
  Image: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$/, "must be an image reference"),
  Entrypoint: z.tuple([]),
  Cmd: z.tuple([
    z.literal("node"),
    z.literal("-e"),
    z.literal(RELAY_SCRIPT, "the relay runs only its own script"),
    z.string().regex(/^\d+\.\d+\.\d+\.\d+$/),
    z.string().regex(/^\d{1,5}$/),
  ]),
  User: z.literal("65534:65534"),
  Labels: egressLabels("relay", "the relay"),
  HostConfig: z.strictObject({
    NetworkMode: z
      .string()
      .refine(
        (mode) => mode === "bridge" || RELAY_NETWORK.test(mode),
        "the relay is on the default bridge or an airlock-relay-* network (the gateway's)",
      ),
    ...EGRESS_HELPER_HARDENING,
  }),
});

/** The holder a `container:<name>` network mode names, if it names one. */
export function holderOf(mode: string): string | undefined {
  const name = mode.startsWith("container:") ? mode.slice("container:".length) : undefined;
  return name !== undefined && EGRESS_HOLDER.test(name) ? name : undefined;
}

/** A job's network holder (egress-network.ts): on its egress network, only sleeping. */
export const HolderCreateBody = z.strictObject({
  name: z.string().regex(EGRESS_HOLDER, "must be airlock-egress-holder-<id>").optional(),
  Image: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$/, "must be an image reference"),
  Entrypoint: z.tuple([]),
  Cmd: z.tuple(
    [z.literal(HOLDER_CMD[0]), z.literal(HOLDER_CMD[1])],
    `a holder runs only ${HOLDER_CMD.join(" ")}`,
  ),
  User: z.literal("65534:65534"),
  Hostname: z.literal("sandbox"),
  Labels: egressLabels("holder", "a holder"),
  NetworkingConfig: z.strictObject({
    EndpointsConfig: z
      .record(
        z.string().regex(EGRESS_NETWORK),
        z.strictObject({
          IPAMConfig: z.strictObject({ IPv4Address: z.string().regex(/^\d+\.\d+\.\d+\.\d+$/) }),
        }),
      )
      .refine((e) => Object.keys(e).length === 1, "a holder is on one network"),
  }),
  HostConfig: z.strictObject({
    NetworkMode: z.string().regex(EGRESS_NETWORK, "a holder is on an airlock-egress-* network"),
    ...EGRESS_HELPER_HARDENING,
  }),
});

/**
 * Which of airlock's egress helpers a create body asks for (its egress label:
 * "relay", held to RelayCreateBody; "holder", to HolderCreateBody), if any;
 * anything else is held to the sandbox's rules.
 */
export function egressRoleOf(raw: Buffer): unknown {
  try {
    const body = JSON.parse(raw.toString("utf8")) as { Labels?: Record<string, unknown> };
    return body.Labels?.[LABEL_EGRESS];
  } catch {
    return undefined;
  }
}

export const VolumeCreateBody = z.strictObject({
  Name: z.string().regex(VOLUME_NAME, "must be a volume name"),
  Labels: Labels.refine(isAirlockVolume, "the volume must carry an airlock label"),
});

/** A job's limits on a parked container (container-spec.ts limitSettings), and nothing else. */
export const ContainerUpdateBody = z
  .strictObject({ Memory: positive, MemorySwap: positive, NanoCpus: positive, PidsLimit: positive })
  .refine((u) => u.MemorySwap === u.Memory, "MemorySwap must equal Memory (no swap)");

/** Go's encoding/json matches keys by Unicode simple folding ("ſ" is "s", "K" is "k"). */
const fold = (key: string) => key.toUpperCase().toLowerCase();

/** Two keys of one object that the engine would read as one, or undefined. */
function caseClash(root: unknown): string | undefined {
  const stack: [unknown, string][] = [[root, "body"]];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [value, where] = next;
    if (typeof value !== "object" || value === null) continue;
    if (Array.isArray(value)) {
      for (const [i, v] of value.entries()) stack.push([v, `${where}.${i}`]);
      continue;
    }
    const seen = new Map<string, string>();
    for (const [key, v] of Object.entries(value)) {
      const prior = seen.get(fold(key));
      if (prior !== undefined) {
        return `${where}: keys ${JSON.stringify(prior)} and ${JSON.stringify(key)} differ only in case, and the engine reads them as one`;
      }
      seen.set(fold(key), key);
      stack.push([v, where === "body" ? key : `${where}.${key}`]);
    }
  }
  return undefined;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.length > 0 ? issue.path.join(".") : "body";
  if (issue.code === "invalid_key") {
    return `${where}: ${issue.issues[0]?.message ?? "is not an allowed key"}`;
  }
  if (issue.code === "unrecognized_keys") {
    const keys = issue.keys.map((k) => JSON.stringify(k)).join(", ");
    return `${where}: ${keys} ${issue.keys.length > 1 ? "are not fields" : "is not a field"} airlock sends`;
  }
  return `${where}: ${issue.message}`;
}

/** The body as the schema parses it (what the proxy forwards), or why it is refused. */
export function checkBody<T>(
  schema: z.ZodType<T>,
  raw: Buffer,
): { value: T; problem?: undefined } | { problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString("utf8"));
  } catch {
    return { problem: "the body is not JSON" };
  }
  const clash = caseClash(json);
  if (clash !== undefined) return { problem: clash };
  const parsed = schema.safeParse(json);
  if (parsed.success) return { value: parsed.data };
  // A field airlock never sends says more than a missing one it does (`"user"` for `User`).
  const { issues } = parsed.error;
  const issue = issues.find((i) => i.code === "unrecognized_keys") ?? issues[0];
  return { problem: issue === undefined ? "the body is not allowed" : describeIssue(issue) };
}
