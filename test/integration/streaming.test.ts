// Large and slow SSE streams: every byte within the cap goes out as events, the
// final result keeps a bounded copy, and a client that stops reading stalls
// the job (backpressure reaches the container) instead of filling the gateway.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecResult } from "../../core/schemas.ts";
import { STREAMED_RESULT_BYTES } from "../../executor/sandbox.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ concurrency: 2 });
});
afterAll(async () => {
  await gw.close();
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
});

const MB = 1024 * 1024;

/**
 * Reads an SSE response, counting streamed stdout characters (and keeping
 * them, with `keep`); optionally stalls after the first event.
 */
async function readEvents(res: Response, stallMs = 0, onStall?: () => Promise<void>, keep = false) {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let stdoutChars = 0;
  const stdout: string[] = [];
  let result: ExecResult | undefined;
  let stalled = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = block
        .split("\n")
        .filter((l) => l.startsWith("data: "))
        .map((l) => l.slice(6))
        .join("\n");
      if (event === "stdout") {
        const text = JSON.parse(data) as string;
        stdoutChars += text.length;
        if (keep) stdout.push(text);
      }
      if (event === "result") result = JSON.parse(data) as ExecResult;
      end = buffer.indexOf("\n\n");
    }
    if (!stalled && stdoutChars > 0 && stallMs > 0) {
      stalled = true;
      await new Promise((r) => setTimeout(r, stallMs));
      await onStall?.();
    }
  }
  return { stdoutChars, stdout: stdout.join(""), result };
}

describe("streaming large output", () => {
  it("streams every byte within the cap; the result keeps a bounded copy", async () => {
    const bytes = 12 * MB;
    const res = await gw.post(
      "/v1/exec",
      {
        profile: "shell",
        command: `head -c ${bytes} /dev/zero | tr '\\0' x`,
        limits: { outputBytes: 16 * MB },
      },
      { accept: "text/event-stream" },
    );
    expect(res.status).toBe(200);
    const { stdoutChars, result } = await readEvents(res);
    expect(stdoutChars).toBe(bytes);
    expect(result?.status).toBe("ok");
    expect(result?.stdout.length).toBe(STREAMED_RESULT_BYTES);
    expect(result?.stdoutTruncated).toBe(true);
  });

  it("sends every character exactly, escapes and multi-byte ones, through a stalled client", async () => {
    // Events reuse their memory once the socket has them: a reuse too early would garble this.
    const line = (i: number) => `${String(i).padStart(6, "0")} é€😀 "q" \\ \t\u0001 end\n`;
    const lines = 150_000;
    const res = await gw.post(
      "/v1/exec",
      {
        profile: "python",
        code: [
          "import sys",
          "out = sys.stdout.buffer",
          `for i in range(${lines}):`,
          `    out.write(f'{i:06d} é€😀 "q" \\\\ \\t\\x01 end\\n'.encode())`,
        ].join("\n"),
        limits: { outputBytes: 16 * MB, timeoutMs: 60_000 },
      },
      { accept: "text/event-stream" },
    );
    expect(res.status).toBe(200);
    const { stdout, result } = await readEvents(res, 1000, undefined, true);
    expect(result?.status).toBe("ok");
    const expected = Array.from({ length: lines }, (_, i) => line(i)).join("");
    expect(stdout.length).toBe(expected.length);
    expect(stdout === expected).toBe(true);
  });

  it("a UTF-8 sequence cut off at the very end of a stream still goes out", async () => {
    // "é" is c3 a9: the job ends after its first byte, which decodes to U+FFFD.
    const res = await gw.post(
      "/v1/exec",
      { profile: "shell", command: "printf 'ab\\303'" },
      { accept: "text/event-stream" },
    );
    const { stdoutChars, result } = await readEvents(res);
    expect(stdoutChars).toBe(3);
    expect(result?.stdout).toBe("ab\ufffd");
  });

  it("a client that stops reading stalls the job instead of filling the gateway", async () => {
    const res = await gw.post(
      "/v1/exec",
      {
        profile: "shell",
        command: `head -c ${14 * MB} /dev/zero | tr '\\0' y`,
        limits: { outputBytes: 16 * MB, timeoutMs: 60_000 },
      },
      { accept: "text/event-stream" },
    );
    let runningWhileStalled = -1;
    const { stdoutChars, result } = await readEvents(res, 2000, async () => {
      // 14 MB cannot all sit in socket buffers and the 1 MiB backlog: the job is still blocked.
      runningWhileStalled = gw.executor.running;
    });
    expect(runningWhileStalled).toBe(1);
    expect(stdoutChars).toBe(14 * MB);
    expect(result?.status).toBe("ok");
  });
});
