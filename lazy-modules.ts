// Some packages load, the moment they are imported, modules this gateway
// never uses: dockerode loads gRPC and a protobuf loader (for BuildKit
// sessions), docker-modem loads ssh2 (for ssh:// engines), about 15 MB
// resident that a gateway on a unix socket or tcp:// engine, with images built
// by the classic builder, never touches; prom-client's default metrics load
// the OpenTelemetry API only to label samples with trace ids, which this
// gateway does not ask for. Imported first by main.ts, this module puts a
// stand-in for each in the CommonJS cache that loads the real module on first
// use, so only a gateway that needs one pays for it. Written by hand because
// no package defers another package's require; `require.cache` is Node's
// documented hook for exactly this.
import { createRequire, Module } from "node:module";

/** [the package that requires it, the module it requires]; docker-modem is dockerode's. */
const DEFERRED = [
  ["dockerode", "@grpc/grpc-js"],
  ["dockerode", "@grpc/proto-loader"],
  ["docker-modem", "docker-modem/lib/ssh.js"],
  ["prom-client", "@opentelemetry/api"],
] as const;

type Loaded = ((...args: unknown[]) => unknown) & Record<PropertyKey, unknown>;

export function deferUnusedModules(): void {
  const fromHere = createRequire(import.meta.url);
  const fromDockerode = createRequire(fromHere.resolve("dockerode"));
  for (const [owner, name] of DEFERRED) {
    const from =
      owner === "docker-modem"
        ? createRequire(fromDockerode.resolve(owner))
        : createRequire(fromHere.resolve(owner));
    const path = from.resolve(name);
    if (from.cache[path] !== undefined) continue;
    let real: Loaded | undefined;
    const load = (): Loaded => {
      if (real === undefined) {
        delete from.cache[path];
        real = from(name) as Loaded;
      }
      return real;
    };
    const standIn = new Module(path);
    standIn.filename = path;
    standIn.loaded = true;
    // A function target, so a module that exports a function (ssh.js) can be called through it.
    standIn.exports = new Proxy(function deferred() {}, {
      get: (_target, key) => load()[key],
      has: (_target, key) => key in load(),
      apply: (_target, self, args) => Reflect.apply(load(), self, args),
      construct: (_target, args) => Reflect.construct(load(), args),
    });
    from.cache[path] = standIn;
  }
}

deferUnusedModules();
