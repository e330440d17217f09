// What the socket proxy lets through to the Docker engine: exactly the calls
// airlock makes (executor/docker.ts, executor/hardening.ts, the readiness
// check), and only in the shape airlock makes them. A container may be created
// only with airlock's label and its hardening (no privileges, no host
// namespaces, no bind mounts, no network, no added capabilities), so a
// compromised gateway behind the proxy cannot use the engine to take the host.
// (Seccomp stays the engine's default when a body names none, as for the
// never-started containers that read workspaces; "unconfined" is refused.)
// Image builds are not allowed: the gateway image runs with
// AIRLOCK_BUILD_IMAGES=never, and images are built on the host (npm run images).
import { z } from "zod";

export type Rule =
  /** Forward as is. */
  | { kind: "allow" }
  /** Forward once the container (or volume) is known to carry the airlock label. */
  | { kind: "container"; id: string }
  | { kind: "volume"; name: string }
  /** Forward once the JSON body passes the check. */
  | { kind: "create-container" }
  | { kind: "create-volume" }
  | { kind: "deny"; reason: string };

const VERSION = /^\/v\d+\.\d+(?=\/)/;
const CONTAINER_OPS: Record<string, readonly string[]> = {
  start: ["POST"],
  attach: ["POST"],
  update: ["POST"],
  wait: ["POST"],
  kill: ["POST"],
  json: ["GET"],
  stats: ["GET"],
  archive: ["GET", "HEAD", "PUT"],
};

/** The rule for one request line; `path` is the URL path without the query. */
export function ruleFor(method: string, rawPath: string): Rule {
  const path = rawPath.replace(VERSION, "");
  const is = (m: string, p: string | RegExp) =>
    method === m && (typeof p === "string" ? path === p : p.test(path));
  if (is("GET", "/_ping") || is("HEAD", "/_ping")) return { kind: "allow" };
  if (is("GET", "/version") || is("GET", "/info")) return { kind: "allow" };
  if (is("GET", /^\/images\/[^?#]+\/json$/)) return { kind: "allow" };
  if (is("GET", "/containers/json") || is("GET", "/volumes")) return { kind: "allow" };
  if (is("POST", "/containers/create")) return { kind: "create-container" };
  if (is("POST", "/volumes/create")) return { kind: "create-volume" };
  const container = /^\/containers\/([A-Za-z0-9][A-Za-z0-9_.-]*)(?:\/([a-z]+))?$/.exec(path);
  if (container !== null) {
    const [, id, op] = container as unknown as [string, string, string | undefined];
    if (op === undefined ? method === "DELETE" : CONTAINER_OPS[op]?.includes(method)) {
      return { kind: "container", id };
    }
  }
  const volume = /^\/volumes\/([A-Za-z0-9][A-Za-z0-9_.-]*)$/.exec(path);
  if (volume !== null && (method === "GET" || method === "DELETE")) {
    return { kind: "volume", name: volume[1] as string };
  }
  return { kind: "deny", reason: `${method} ${path} is not a call airlock makes` };
}

/**
 * Airlock's containers carry its instance label, `airlock` (container-spec.ts,
 * workspaces.ts). Only that key counts: the sandbox images' own `airlock.image`
 * labels are inherited by any container made from them, airlock's or not.
 */
export function isAirlockContainer(labels: Record<string, string> | null | undefined): boolean {
  return labels != null && Object.hasOwn(labels, "airlock");
}

/** Job volumes carry `airlock`; workspaces and their touch markers their own keys (workspaces.ts). */
const VOLUME_KEYS = ["airlock", "airlock.workspace", "airlock.workspace.touch"];
export function isAirlockVolume(labels: Record<string, string> | null | undefined): boolean {
  return labels != null && VOLUME_KEYS.some((k) => Object.hasOwn(labels, k));
}

const empty = (what: string) =>
  z
    .array(z.unknown())
    .nullish()
    .refine((v) => v === undefined || v === null || v.length === 0, `${what} are not allowed`);
const notHost = (what: string) =>
  z
    .string()
    .nullish()
    .refine(
      (v) => v === undefined || v === null || !(v.startsWith("host") || v.startsWith("container:")),
      `${what} may not share the host's or another container's namespace`,
    );

const Mount = z.object({
  Type: z.literal("volume", "only volume mounts are allowed (no bind mounts)"),
  VolumeOptions: z
    .object({
      DriverConfig: z
        .object({
          Name: z.literal("local", "only the local volume driver is allowed").optional(),
          Options: z
            .record(z.string(), z.unknown())
            .nullish()
            .refine(
              (v) => v == null || Object.keys(v).length === 0,
              "volume driver options are not allowed (they can mount host paths)",
            ),
        })
        .nullish(),
    })
    .nullish(),
});

/** The parts of a container create body that decide what the container may do to the host. */
export const ContainerCreateBody = z.object({
  Labels: z
    .record(z.string(), z.string())
    .refine((l) => isAirlockContainer(l), "the container must carry the airlock label"),
  HostConfig: z.object({
    Privileged: z.literal(false, "privileged containers are not allowed").optional(),
    Binds: empty("bind mounts"),
    Mounts: z.array(Mount).nullish(),
    VolumesFrom: empty("volumes from other containers"),
    Devices: empty("devices"),
    DeviceRequests: empty("device requests"),
    CapAdd: empty("added capabilities"),
    CapDrop: z.array(z.string()).refine((c) => c.includes("ALL"), "CapDrop must include ALL"),
    NetworkMode: z.literal("none", "NetworkMode must be none"),
    PortBindings: z
      .record(z.string(), z.unknown())
      .nullish()
      .refine((v) => v == null || Object.keys(v).length === 0, "port bindings are not allowed"),
    PublishAllPorts: z.literal(false, "publishing ports is not allowed").optional(),
    PidMode: notHost("PidMode"),
    IpcMode: notHost("IpcMode"),
    UTSMode: notHost("UTSMode"),
    UsernsMode: notHost("UsernsMode"),
    CgroupnsMode: notHost("CgroupnsMode"),
    Sysctls: z
      .record(z.string(), z.unknown())
      .nullish()
      .refine((v) => v == null || Object.keys(v).length === 0, "sysctls are not allowed"),
    ReadonlyRootfs: z.literal(true, "the root filesystem must be read-only"),
    Runtime: z.enum(["runc", "runsc"], "Runtime must be runc or runsc").optional(),
    SecurityOpt: z
      .array(z.string())
      .refine((o) => o.includes("no-new-privileges:true"), "no-new-privileges is required")
      .refine(
        (o) => !o.some((s) => /unconfined|label[=:]disable/.test(s)),
        "unconfined security options are not allowed",
      ),
  }),
});

export const VolumeCreateBody = z.object({
  Labels: z
    .record(z.string(), z.string())
    .refine((l) => isAirlockVolume(l), "the volume must carry an airlock label"),
  Driver: z.literal("local", "only the local volume driver is allowed").optional(),
  DriverOpts: z
    .record(z.string(), z.unknown())
    .nullish()
    .refine(
      (v) => v == null || Object.keys(v).length === 0,
      "driver options are not allowed (they can mount host paths)",
    ),
});

/** undefined when the body may go through; otherwise why not. */
export function checkBody(schema: z.ZodType, raw: Buffer): string | undefined {
  let json: unknown;
  try {
    json = JSON.parse(raw.toString("utf8"));
  } catch {
    return "the body is not JSON";
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return undefined;
  const issue = parsed.error.issues[0];
  return `${issue?.path.join(".") ?? "body"}: ${issue?.message ?? "not allowed"}`;
}
