// A real PostgreSQL for tests of the shared state store: each caller gets a
// database of its own (created here, dropped by drop()), on the server that
// .ci/provision.sh starts (ENVIRONMENT.md: Debian's PostgreSQL 15 on
// 127.0.0.1:5432, role `airlock`). AIRLOCK_TEST_PG_URL names another server.
// Outside CI a machine without one skips these tests, saying why; in CI
// (CI=true) its absence fails them, since .ci/run provides it.
import { randomBytes } from "node:crypto";
import pg from "pg";

export const ADMIN_URL =
  process.env["AIRLOCK_TEST_PG_URL"] ?? "postgres://airlock:airlock@127.0.0.1:5432/postgres";

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** Why PostgreSQL cannot be used here, or undefined when it answers. */
export async function postgresMissing(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query("SELECT 1");
    return undefined;
  } catch (err) {
    const why =
      `PostgreSQL does not answer at ${ADMIN_URL.replace(/:[^:@/]*@/, "@")} (${(err as Error).message}); ` +
      "run `bash .ci/provision.sh` (installs and starts it, creates the role airlock) or set AIRLOCK_TEST_PG_URL";
    if (process.env["CI"] === "true") throw new Error(`in CI PostgreSQL must be there: ${why}`);
    return why;
  } finally {
    await client.end().catch(() => {});
  }
}

/** A new, empty database on the test server. */
export async function testDatabase(prefix = "airlock_test"): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    // WITH (FORCE): a gateway killed by a test may still hold a connection.
    drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
