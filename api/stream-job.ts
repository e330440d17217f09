// A job's output as Server-Sent Events: `stdout`/`stderr` events while it runs
// (data: a JSON string, so any bytes survive SSE's line framing), then one
// `result` (or `error`) event. Two transports carry the same bytes:
//  - Node's own response, when @hono/node-server serves the request: each
//    event is written with a callback, and its memory goes back to a
//    FrameRing once the socket has taken it, so a long stream reuses the
//    same memory instead of leaving a dead buffer behind per chunk.
//  - hono's streamSSE otherwise (app.request in tests, the in-process calls
//    of MCP and Piston), where no write says when it is done: fresh memory.
// Either way, output a slow client has not taken is bounded: past the high
// mark the sandbox stops reading the container, so the job blocks on its own
// writes instead of growing the gateway.
import { ServerResponse } from "node:http";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { AirlockError } from "../core/errors.ts";
import type { ExecResult } from "../core/schemas.ts";
import { JobCancelledError, type RunOptions } from "../executor/sandbox.ts";
import type { AuthEnv } from "./auth.ts";
import { FrameRing, type FrameSource, freshFrames, OutputEventEncoder } from "./output-events.ts";

/** Bytes of encoded output that may wait for a slow client (queued, or written but not yet flushed). */
const SSE_HIGH_WATER = 128 * 1024;
const SSE_LOW_WATER = 32 * 1024;

const SSE_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache",
  connection: "keep-alive",
};

/**
 * Streams the job that `start` runs. The job is admitted before the stream
 * opens, so a refusal that comes at once (busy, docker_unavailable) is still a
 * plain HTTP error.
 */
export async function streamJob(
  c: Context<AuthEnv>,
  start: (options: RunOptions) => Promise<ExecResult>,
  signal: AbortSignal,
): Promise<Response> {
  const outgoing = nodeResponse(c);
  const ring = outgoing === undefined ? undefined : new FrameRing();
  const output = new OutputQueue(ring ?? freshFrames);
  const run = start({
    signal,
    onOutput: (stream, chunk) => output.push(stream, chunk),
    outputDrained: () => output.drained(),
  });
  let settled = false;
  const ended = () => {
    settled = true;
    output.wake();
  };
  run.then(ended, ended);
  await new Promise((resolve) => setImmediate(resolve));
  if (settled) {
    await run.catch((err: unknown) => {
      if (err instanceof AirlockError) throw err;
    });
  }

  /** Sends every event as it comes, then the last one; resolves with that last event (if any). */
  const pump = async (
    send: (event: Buffer) => Promise<void> | void,
  ): Promise<string | undefined> => {
    for (;;) {
      for (let event = output.shift(); event !== undefined; event = output.shift()) {
        await send(event);
      }
      if (settled && output.finish()) continue;
      if (settled) break;
      await output.next();
    }
    return lastEvent(run);
  };

  if (outgoing !== undefined && ring !== undefined) {
    outgoing.writeHead(200, nodeHeaders(c));
    outgoing.flushHeaders();
    const send = (event: Buffer) => {
      // Counted until the socket has it, and only then is its memory reused.
      outgoing.write(event, (err) => {
        if (err == null) ring.release(event);
        output.sent(event.length);
      });
    };
    void pump(send)
      .then((last) => outgoing.end(last))
      .catch((err: unknown) => outgoing.destroy(err as Error));
    return RESPONSE_ALREADY_SENT;
  }
  return streamSSE(c, async (sse) => {
    const last = await pump(async (event) => {
      await sse.write(event);
      output.sent(event.length);
    });
    if (last !== undefined) await sse.write(last);
  });
}

/** The final event: the result, or an error; none for a job cancelled because its client left. */
async function lastEvent(run: Promise<ExecResult>): Promise<string | undefined> {
  try {
    return sseEvent("result", JSON.stringify(await run));
  } catch (err) {
    if (err instanceof JobCancelledError) return undefined;
    const error =
      err instanceof AirlockError
        ? err
        : new AirlockError("internal", "the job failed inside airlock", { cause: err });
    return sseEvent("error", JSON.stringify(error.toBody()));
  }
}

/** An event whose data is one line (JSON has no raw newline). */
function sseEvent(name: string, data: string): string {
  return `event: ${name}\ndata: ${data}\n\n`;
}

/** Node's response for this request, when @hono/node-server serves it. */
function nodeResponse(c: Context<AuthEnv>): ServerResponse | undefined {
  const outgoing = (c.env as { outgoing?: unknown } | undefined)?.outgoing;
  return outgoing instanceof ServerResponse ? outgoing : undefined;
}

/**
 * The headers of a response written straight to Node: SSE's, and the request
 * id that hono's requestId middleware would have added. Read from the request
 * id, not from c.res: touching c.res makes hono wrap the response this route
 * returns in a new one, and @hono/node-server would then write its headers a
 * second time.
 */
function nodeHeaders(c: Context<AuthEnv>): Record<string, string> {
  const requestId = c.get("requestId");
  return requestId === undefined ? SSE_HEADERS : { "x-request-id": requestId, ...SSE_HEADERS };
}

/** Encoded events between the sandbox and the transport, with the byte count that makes backpressure. */
class OutputQueue {
  private readonly encoders: Record<"stdout" | "stderr", OutputEventEncoder>;
  private readonly pending: Buffer[] = [];
  private pendingBytes = 0;
  private drainWaiters: (() => void)[] = [];
  private waiting: (() => void) | undefined;
  private finished = false;

  constructor(frames: FrameSource) {
    this.encoders = {
      stdout: new OutputEventEncoder("stdout", frames),
      stderr: new OutputEventEncoder("stderr", frames),
    };
  }

  /** Takes a chunk of output; false when the client is too far behind (stop reading). */
  push(stream: "stdout" | "stderr", chunk: Buffer): boolean {
    this.encoders[stream].write(chunk, this.enqueue);
    return this.pendingBytes < SSE_HIGH_WATER;
  }

  /** Resolves once the client has taken enough to go on. */
  drained(): Promise<void> {
    return this.pendingBytes < SSE_HIGH_WATER
      ? Promise.resolve()
      : new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  shift(): Buffer | undefined {
    return this.pending.shift();
  }

  /** `bytes` of events have reached the client (or were dropped with it). */
  sent(bytes: number): void {
    this.pendingBytes -= bytes;
    if (this.pendingBytes <= SSE_LOW_WATER && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /**
   * Once the job is over: queues the events of a character cut off at the
   * very end of a stream (as U+FFFD). True the first time, when it may have.
   */
  finish(): boolean {
    if (this.finished) return false;
    this.finished = true;
    this.encoders.stdout.end(this.enqueue);
    this.encoders.stderr.end(this.enqueue);
    return true;
  }

  /** Resolves when there is something new: an event, or the end of the job. */
  next(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.waiting = resolve;
    });
  }

  wake(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.();
  }

  private readonly enqueue = (event: Buffer): void => {
    this.pending.push(event);
    this.pendingBytes += event.length;
    this.wake();
  };
}
