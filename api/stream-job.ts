// Server-Sent Events of an execution: `stdout`/`stderr` events (data: a JSON
// string, so any bytes survive SSE's line framing; id: the piece's number in
// the execution, for a reattach), then one last event (`result`, `error` or
// `end`). Two producers: a streamed exec's live output (streamJob), and a
// replay from the store (GET /v1/executions/:id/events). Two transports carry
// the same bytes:
//  - Node's own response, when @hono/node-server serves the request: each
//    event is written with a callback, and its memory goes back to a
//    FrameRing once the socket has taken it, so a long stream reuses the
//    same memory instead of leaving a dead buffer behind per chunk.
//  - hono's streamSSE otherwise (app.request in tests, the in-process calls
//    of MCP and Piston), where no write says when it is done: fresh memory.
// Either way, events a slow client has not taken are bounded: past the high
// mark the producer waits (the sandbox stops reading the container, so the
// job blocks on its own writes; a replay stops reading the store). A client
// that goes away only closes its stream: the job goes on (DESIGN.md
// "Executions"), and its output stays readable from the store.
import { ServerResponse } from "node:http";
import { RESPONSE_ALREADY_SENT } from "@hono/node-server/utils/response";
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { AirlockError } from "../core/errors.ts";
import type { OutputStream } from "../core/state.ts";
import { JobCancelledError } from "../executor/sandbox.ts";
import type { AuthEnv } from "./auth.ts";
import type { Started } from "./executions/executions.ts";
import type { OutputSink } from "./executions/output.ts";
import {
  encodeEvent,
  FrameRing,
  type FrameSource,
  freshFrames,
  MAX_EVENT_BYTES,
} from "./output-events.ts";

/**
 * Bytes of encoded events that may wait for a slow client (queued, or written
 * but not yet flushed). The kernel's socket buffer, not this, is what keeps a
 * fast client's stream full: these bound the memory each stream holds while
 * its client lags (with 100 streams at once, every 64 KiB here is 6.4 MB).
 */
const SSE_HIGH_WATER = 64 * 1024;
const SSE_LOW_WATER = 16 * 1024;
/** A response's event ring: what the high water lets be in flight, and the event that crosses it. */
const RING_BYTES = SSE_HIGH_WATER + MAX_EVENT_BYTES;

const SSE_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache",
  connection: "keep-alive",
};

/** An event whose data is one line (JSON has no raw newline). */
export function sseEvent(name: string, data: string): string {
  return `event: ${name}\ndata: ${data}\n\n`;
}

/**
 * Streams a job that `begin` records and starts, with the output sink it
 * should write to. The job is admitted and recorded before the stream opens,
 * so a refusal that comes at once (busy, docker_unavailable,
 * state_unavailable) is still a plain HTTP error.
 */
export async function streamJob(
  c: Context<AuthEnv>,
  begin: (sink: OutputSink) => Promise<Started>,
): Promise<Response> {
  const stream = new EventStream(c);
  const started = await begin(stream.queue);
  let settled = false;
  const ended = () => {
    settled = true;
  };
  started.result.then(ended, ended);
  await new Promise((resolve) => setImmediate(resolve));
  if (settled) {
    await started.result.catch((err: unknown) => {
      if (err instanceof AirlockError) throw err;
    });
  }
  // The stream opens: an Idempotency-Key now stands for this execution (api/idempotency.ts).
  c.set("streamedExecution", started.id);
  return stream.respond(lastEvent(started), { location: `/v1/executions/${started.id}` });
}

/** The final event: the result, an error, or `end` for a job cancelled (DELETE, a stop). */
async function lastEvent(started: Started): Promise<string> {
  try {
    return sseEvent("result", JSON.stringify(await started.result));
  } catch (err) {
    if (err instanceof JobCancelledError) {
      return sseEvent("end", JSON.stringify({ id: started.id, status: "cancelled" }));
    }
    const error =
      err instanceof AirlockError
        ? err
        : new AirlockError("internal", "the job failed inside airlock", { cause: err });
    return sseEvent("error", JSON.stringify(error.toBody()));
  }
}

/** One response's event stream: the queue producers write to, and the transport that sends it. */
export class EventStream {
  readonly queue: EventQueue;
  private readonly c: Context<AuthEnv>;
  private readonly outgoing: ServerResponse | undefined;
  private readonly ring: FrameRing | undefined;

  constructor(c: Context<AuthEnv>) {
    this.c = c;
    this.outgoing = nodeResponse(c);
    this.ring = this.outgoing === undefined ? undefined : new FrameRing(RING_BYTES);
    this.queue = new EventQueue(this.ring ?? freshFrames);
    // The client left: its events are dropped and the producer never waits for it again.
    const signal = c.req.raw.signal;
    if (signal.aborted) this.queue.close();
    else signal.addEventListener("abort", () => this.queue.close(), { once: true });
  }

  /** Sends the queue's events until `last` settles, then its event (if any), and ends. */
  respond(last: Promise<string | undefined>, headers: Record<string, string> = {}): Response {
    const { queue } = this;
    let settled = false;
    const ended = () => {
      settled = true;
      queue.wake();
    };
    last.then(ended, ended);
    /** Sends every event as it comes, then resolves with the last one (none for a client that left). */
    const pump = async (
      send: (event: Buffer) => Promise<void> | void,
    ): Promise<string | undefined> => {
      for (;;) {
        for (let event = queue.shift(); event !== undefined; event = queue.shift()) {
          await send(event);
        }
        if (queue.closed) return undefined;
        if (settled) return last.catch(() => undefined);
        await queue.next();
      }
    };

    const { outgoing, ring } = this;
    if (outgoing !== undefined && ring !== undefined) {
      outgoing.writeHead(200, { ...nodeHeaders(this.c), ...headers });
      outgoing.flushHeaders();
      const send = (event: Buffer) => {
        // Counted until the socket has it, and only then is its memory reused.
        outgoing.write(event, (err) => {
          if (err == null) ring.release(event);
          queue.sent(event.length);
        });
      };
      void pump(send)
        .then((final) => outgoing.end(final))
        .catch((err: unknown) => outgoing.destroy(err as Error));
      return RESPONSE_ALREADY_SENT;
    }
    for (const [name, value] of Object.entries(headers)) this.c.header(name, value);
    return streamSSE(this.c, async (sse) => {
      sse.onAbort(() => queue.close());
      const final = await pump(async (event) => {
        await sse.write(event);
        queue.sent(event.length);
      });
      if (final !== undefined) await sse.write(final);
    });
  }
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

/** Encoded events between a producer and the transport, with the byte count that makes backpressure. */
export class EventQueue implements OutputSink {
  readonly frames: FrameSource;
  private readonly pending: Buffer[] = [];
  private pendingBytes = 0;
  private drainWaiters: (() => void)[] = [];
  private waiting: (() => void) | undefined;
  /** The client has gone: nothing more is queued, and nobody waits for it. */
  closed = false;

  constructor(frames: FrameSource) {
    this.frames = frames;
  }

  /** A piece of output as event `seq` (OutputSink). */
  piece(stream: OutputStream, piece: Buffer, size: number, seq: number): void {
    if (this.closed) return;
    this.push(encodeEvent(stream, piece, size, this.frames, seq));
  }

  /** Queues an encoded event. */
  push(event: Buffer): void {
    if (this.closed) return;
    this.pending.push(event);
    this.pendingBytes += event.length;
    this.wake();
  }

  /** The client is too far behind: stop producing until drained(). */
  get full(): boolean {
    return this.pendingBytes >= SSE_HIGH_WATER;
  }

  /** Resolves once the client has taken enough to go on (or has gone). */
  drained(): Promise<void> {
    return this.full
      ? new Promise<void>((resolve) => this.drainWaiters.push(resolve))
      : Promise.resolve();
  }

  shift(): Buffer | undefined {
    return this.pending.shift();
  }

  /** `bytes` of events have reached the client (or were dropped with it). */
  sent(bytes: number): void {
    if (this.closed) return;
    this.pendingBytes -= bytes;
    if (this.pendingBytes <= SSE_LOW_WATER) this.release();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending.length = 0;
    this.pendingBytes = 0;
    this.release();
    this.wake();
  }

  /** Resolves when there is something new: an event, the end, or the client leaving. */
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

  private release(): void {
    if (this.drainWaiters.length === 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
