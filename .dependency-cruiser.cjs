// The layering rule, checked by dependency-cruiser in `npm test` (npm run
// layers). Bottom to top: core/ (the wire contract, errors, the Job, small
// shared interfaces) → policies/, executor/ and state/ (siblings: decisions,
// the engine, the state store) → api/ (the HTTP face) → main.ts, bin/, cli/.
// Nothing reaches up.
// docs/architecture.md explains each folder's job.
/** @type {import('dependency-cruiser').IConfiguration} */
const LAYERS_ABOVE_CORE =
  "^(api|executor|policies|state|cli|client|bin|deploy|images|bench|test)/|^(main|doctor|compile-cache|lazy-modules)[.]ts$";

module.exports = {
  forbidden: [
    {
      name: "core-imports-nothing-of-the-project",
      comment:
        "core/ is the bottom layer: it may use npm packages and node:, never another folder.",
      severity: "error",
      from: { path: "^core/" },
      to: { path: LAYERS_ABOVE_CORE },
    },
    {
      name: "policies-only-on-core",
      comment: "policies/ decides; it knows the contract (core/), not the engine or the HTTP face.",
      severity: "error",
      from: { path: "^policies/" },
      to: { path: "^(api|executor|state|cli|client|bin|deploy|images)/|^(main|doctor)[.]ts$" },
    },
    {
      name: "executor-only-on-core",
      comment:
        "executor/ (the engine) runs resolved Jobs; it knows neither the HTTP face nor the policies.",
      severity: "error",
      from: { path: "^executor/" },
      to: { path: "^(api|policies|state|cli|client|bin|deploy)/|^(main|doctor)[.]ts$" },
    },
    {
      name: "state-only-on-core",
      comment:
        "state/ (the embedded state store) implements core/state.ts: it knows the record types, not who uses them.",
      severity: "error",
      from: { path: "^state/" },
      to: {
        path: "^(api|executor|policies|cli|client|bin|deploy|images|bench|test)/|^(main|doctor|compile-cache|lazy-modules)[.]ts$",
      },
    },
    {
      name: "api-below-the-entry-points",
      comment:
        "api/ is the HTTP face: it composes core, policies, executor and the typed client; never main or the CLI.",
      severity: "error",
      from: { path: "^api/" },
      to: { path: "^(cli|bin|deploy|bench|test)/|^(main|doctor)[.]ts$" },
    },
    {
      name: "client-stands-alone",
      comment:
        "The typed client ships to agents: it may use the wire contract (core/) and nothing of the server.",
      severity: "error",
      from: { path: "^client/" },
      to: { path: "^(api|executor|policies|state|cli|bin|deploy|images)/|^(main|doctor)[.]ts$" },
    },
    {
      name: "dockerode-only-in-the-engine-adapter",
      comment:
        "Only executor/docker.ts (and the image builder) speak dockerode; everything else uses ContainerClient.",
      severity: "error",
      from: {
        path: "^(api|core|policies|executor|state|cli|client|bin)/|^(main|doctor)[.]ts$",
        pathNot: "^executor/docker[.]ts$",
      },
      to: { path: "node_modules/(dockerode|@types/dockerode)/" },
    },
    {
      name: "no-circular",
      comment:
        "A cycle makes two modules one in all but name. One closed only by a type import (an interface and its decorator) is erased at run time.",
      severity: "error",
      from: { pathNot: "^test/" },
      to: { circular: true, viaOnly: { dependencyTypesNot: ["type-only"] } },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^([.]tools|bench/results|test/artifacts)/" },
    // swc parses the TypeScript: dependency-cruiser cannot yet use typescript 7 (the native tsc).
    parser: "swc",
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
    },
  },
};
