// `npm run doctor`: the hardening checks airlock runs at start-up, on their own,
// as a table. Exits 1 when any promised protection is missing.
import { ConfigError, loadConfig } from "./api/config.ts";
import { connectEngine } from "./executor/docker.ts";
import { engineChecks, failures, formatChecks, sandboxChecks } from "./executor/hardening.ts";
import { loadProfiles, ProfileError } from "./policies/load.ts";

try {
  const config = loadConfig(process.env);
  const profiles = loadProfiles({ extraDir: config.profilesDir });
  const { docker, client } = connectEngine();
  const checks = [
    ...(await engineChecks(docker, profiles)),
    ...(await sandboxChecks(client, profiles, `${config.instanceId}-doctor`)),
  ];
  process.stdout.write(`${formatChecks(checks)}\n`);
  const refusal = failures(checks);
  if (refusal !== undefined) {
    process.stderr.write(`\n${refusal}\n`);
    process.exit(1);
  }
  process.stdout.write("\nevery protection airlock promises is in place\n");
} catch (err) {
  const known = err instanceof ConfigError || err instanceof ProfileError;
  process.stderr.write(
    `airlock doctor: ${known ? (err as Error).message : (err as Error).stack}\n`,
  );
  process.exit(1);
}
