// The gateway's memory under load, each measured on a gateway process of its
// own (node main.ts, as `npm start` runs it): many large SSE streams at once,
// and concurrent archive imports.
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pack } from "tar-stream";
import { KEY, MIB, peakRssDuring, startMainGateway } from "./harness.ts";

/**
 * Starts the real gateway (node main.ts) with room for `streams` jobs at once,
 * streams `bytes` from each of them over SSE, and reads the gateway's peak RSS
 * (by default 16 x 100 MB). The warm pool is on, as by default: with it the 16
 * jobs stream at the same time (cold starts spread them out, which flattered
 * the figure by 20-40 MB).
 */
export async function measureStreamingRss(streams = 16, size = 100_000_000) {
  const gw = await startMainGateway({
    AIRLOCK_INSTANCE_ID: `bench-rss-${process.pid}-${streams}`,
    AIRLOCK_CONCURRENCY: String(streams),
  });
  try {
    const { value: streamed, ...rss } = await peakRssDuring(gw.pid, () =>
      Promise.all(
        Array.from({ length: streams }, async () => {
          const res = await fetch(`${gw.url}/v1/exec`, {
            method: "POST",
            headers: {
              authorization: `Bearer ${KEY}`,
              "content-type": "application/json",
              accept: "text/event-stream",
            },
            body: JSON.stringify({
              profile: "shell-bench",
              command: `head -c ${size} /dev/zero | tr '\\0' x`,
              limits: { outputBytes: Math.ceil(size * 1.2), timeoutMs: 240_000 },
            }),
          });
          if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
          let bytes = 0;
          const reader = (res.body as ReadableStream<Uint8Array>).getReader();
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            bytes += value.length;
          }
          return bytes;
        }),
      ),
    );
    // Each stream's events carry all its output (and their framing): none was cut short.
    if (Math.min(...streamed) < size) {
      throw new Error(`a stream ended early: ${Math.min(...streamed)} bytes of events`);
    }
    return { ...rss, sseBytesPerJob: Math.min(...streamed) };
  } finally {
    await gw.stop();
  }
}

/** A 30 MiB tar: 30 files of 1 MiB of random bytes. */
async function thirtyMibTar(): Promise<Buffer> {
  const tar = pack();
  for (let i = 0; i < 30; i++) tar.entry({ name: `part-${i}.bin`, mode: 0o644 }, randomBytes(MIB));
  tar.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of Readable.from(tar)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Four concurrent `PUT /v1/workspaces/:id/archive` of 30 MiB each, into four
 * workspaces, on a gateway of its own (node main.ts): its peak RSS.
 */
export async function measureImportRss() {
  const gw = await startMainGateway({ AIRLOCK_INSTANCE_ID: `bench-import-${process.pid}` });
  const auth = { authorization: `Bearer ${KEY}` };
  const ids: string[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${gw.url}/v1/workspaces`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify({ profile: "shell-bench" }),
      });
      ids.push(((await res.json()) as { id: string }).id);
    }
    const tar = await thirtyMibTar();
    const { value: seconds, ...rss } = await peakRssDuring(gw.pid, async () => {
      const t0 = performance.now();
      await Promise.all(
        ids.map(async (id) => {
          const res = await fetch(`${gw.url}/v1/workspaces/${id}/archive`, {
            method: "PUT",
            headers: { ...auth, "content-type": "application/x-tar" },
            body: tar,
          });
          if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
          await res.arrayBuffer();
        }),
      );
      return (performance.now() - t0) / 1000;
    });
    return { ...rss, tarMb: +(tar.length / MIB).toFixed(1), seconds: +seconds.toFixed(2) };
  } finally {
    for (const id of ids)
      await fetch(`${gw.url}/v1/workspaces/${id}`, { method: "DELETE", headers: auth });
    await gw.stop();
  }
}
