// The egress row of `npm run bench` (also alone: `node bench/egress.ts`, or
// BENCH_ONLY=egress npm run bench). Two questions, against a local upstream
// container on a bridge network of the bench's own (no packet leaves the machine):
// - time to first byte of an HTTP GET through the proxy (sandbox → relay →
//   proxy → upstream), p50 over curl's own timing, against the same GET from a
//   container on the upstream's plain bridge network;
// - how long a job that asks for a network takes to start and answer, against
//   the same job without one (both cold: no warm pool).
import { randomUUID } from "node:crypto";
import Dockerode from "dockerode";
import type { ExecResult } from "../core/schemas.ts";
import { startUpstream } from "../test/support/egress-upstream.ts";
import { keyHash, startGateway } from "../test/support/gateway.ts";

const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 20);
const GETS = 50;
// curl prints the time to first byte of each GET, one per line, in seconds.
const CURL_LOOP = (url: string) =>
  `for i in $(seq ${GETS}); do curl -s -o /dev/null -w '%{time_starttransfer}\\n' ${url}; done`;

function p50(samples: number[]): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] ?? Number.NaN;
}

const ms = (lines: string) =>
  lines
    .split("\n")
    .filter(Boolean)
    .map((l) => Number(l) * 1000);

export async function egressPhase(
  results: Record<string, unknown>,
  rows: string[][],
  targets: { target: string; measured: string; met: boolean }[] = [],
) {
  const suffix = randomUUID().slice(0, 8);
  const key = `bench-egress-${randomUUID()}`;
  const up = await startUpstream("unused", `airlock-bench-upstream-${suffix}`);
  const gw = await startGateway({
    egress: {},
    policy: {
      networks: { up: { allow: ["plain.test:8080"], resolve: { "plain.test": up.ip } } },
      tenants: { bench: { keys: [{ hash: keyHash(key), scopes: ["exec"], networks: ["up"] }] } },
    },
  });
  const exec = async (body: Record<string, unknown>) => {
    const res = await gw.call(key, "POST", "/v1/exec", { profile: "shell", ...body });
    const r = (await res.json()) as ExecResult;
    if (res.status !== 200 || r.status !== "ok") throw new Error(JSON.stringify(r).slice(0, 500));
    return r;
  };
  try {
    // The gateway's first networked job starts the proxy and makes the spare
    // networks (relay and holder each) beside it: measured after it, in steady state.
    await exec({ command: ["true"], networks: ["up"] });
    await new Promise((r) => setTimeout(r, 2000));
    const proxied = await exec({
      command: ["bash", "-c", CURL_LOOP("http://plain.test:8080/")],
      networks: ["up"],
      limits: { timeoutMs: 60_000 },
    });
    const direct = await runOnBridge(
      `airlock-bench-upstream-${suffix}`,
      CURL_LOOP(`http://${up.ip}:8080/`),
    );
    const ttfb = { proxied: p50(ms(proxied.stdout)), direct: p50(ms(direct)) };
    const withNet: number[] = [];
    const without: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      let t0 = performance.now();
      await exec({ command: ["true"], networks: ["up"] });
      withNet.push(performance.now() - t0);
      t0 = performance.now();
      await exec({ command: ["true"] });
      without.push(performance.now() - t0);
    }
    const start = { withNetwork: Math.round(p50(withNet)), without: Math.round(p50(without)) };
    results["egress"] = { ttfbMs: ttfb, jobMs: start, gets: GETS, rounds: ROUNDS };
    rows.push([
      `egress: TTFB of a GET, p50 of ${GETS}`,
      `${ttfb.proxied.toFixed(1)} ms through the proxy`,
      `${ttfb.direct.toFixed(1)} ms on a plain bridge`,
      `${ttfb.proxied >= ttfb.direct ? "+" : ""}${(ttfb.proxied - ttfb.direct).toFixed(1)} ms`,
    ]);
    const added = ttfb.proxied - ttfb.direct;
    const ratio = start.withNetwork / start.without;
    targets.push(
      {
        target: "egress: the proxy adds <= 5 ms to TTFB (p50)",
        measured: `${added.toFixed(1)} ms`,
        met: added <= 5,
      },
      {
        target: "egress: a job with a network starts within 1.5x",
        measured: `${ratio.toFixed(2)}x`,
        met: ratio <= 1.5,
      },
    );
    rows.push([
      "egress: a job with a network, p50",
      `${start.withNetwork} ms`,
      `${start.without} ms without one (both cold)`,
      `${(start.withNetwork / start.without).toFixed(2)}x`,
    ]);
  } finally {
    await gw.close();
    await up.stop();
  }
}

/** Runs `script` in a container of the shell image on the upstream's own bridge network; its stdout. */
async function runOnBridge(network: string, script: string): Promise<string> {
  const docker = new Dockerode();
  const container = await docker.createContainer({
    Image: "airlock/shell:1",
    Entrypoint: [],
    Cmd: ["bash", "-c", script],
    User: "65534:65534",
    Labels: { airlock: "bench" },
    HostConfig: { NetworkMode: network },
  });
  try {
    await container.start();
    await container.wait();
    const logs = await container.logs({ stdout: true, stderr: false });
    // Docker's multiplexed frames: an 8-byte header before each chunk.
    const out: Buffer[] = [];
    for (let i = 0; i + 8 <= logs.length; ) {
      const size = logs.readUInt32BE(i + 4);
      out.push(logs.subarray(i + 8, i + 8 + size));
      i += 8 + size;
    }
    return Buffer.concat(out).toString();
  } finally {
    await container.remove({ force: true });
  }
}

if (import.meta.main) {
  const results: Record<string, unknown> = {};
  const rows: string[][] = [];
  await egressPhase(results, rows);
  for (const row of rows) process.stdout.write(`| ${row.join(" | ")} |\n`);
}
