// GET /v1/executions/:id/events: the output an execution keeps, from the
// start or after the event id a client saw last, then the rest as it comes,
// then how it ended. Read from the store page by page at the client's pace
// (a slow client holds no more than one page and the queue's high mark), and
// woken by the job when it writes or ends (polled once a second for a job a
// sibling gateway runs). The same events, with the same ids, as a streamed
// exec sent live: a client that lost that stream continues here.
import { AirlockError } from "../../core/errors.ts";
import { type Execution, isFinalExecutionStatus } from "../../core/state.ts";
import { escapedSize } from "../output-events.ts";
import type { EventQueue } from "../stream-job.ts";
import { sseEvent } from "../stream-job.ts";
import type { Executions } from "./executions.ts";

/** A comment line every so often on a quiet stream, so proxies keep it open. */
const KEEP_ALIVE_MS = 15_000;
const POLL_MS = 1000;
const KEEP_ALIVE = Buffer.from(": keep-alive\n\n", "latin1");

interface Bounds {
  storedBytes: number;
  droppedBytes: number;
}

/** The event that tells a replay what it cannot have: output past the per-execution bound. */
function dropped(bounds: Bounds, maxOutputBytes: number): string {
  return sseEvent(
    "dropped",
    JSON.stringify({
      ...bounds,
      message: `output past the first ${maxOutputBytes} bytes of an execution is not kept for replay: ${bounds.droppedBytes} bytes were streamed live only`,
    }),
  );
}

/** How it ended: `result` (done), `error` (failed: the error body), or `end` ({id, status, error?}). */
export function endEvent(e: Execution): string {
  if (e.status === "done" && e.result !== undefined) {
    return sseEvent("result", JSON.stringify(e.result));
  }
  if (e.status === "failed" && e.error !== undefined) {
    return sseEvent("error", JSON.stringify({ error: e.error }));
  }
  const end: Record<string, unknown> = { id: e.id, status: e.status };
  if (e.error !== undefined) end["error"] = e.error;
  if (e.resultDroppedBytes !== undefined) end["resultDroppedBytes"] = e.resultDroppedBytes;
  return sseEvent("end", JSON.stringify(end));
}

/**
 * Writes the execution's events after `from.after` into `queue`, following
 * it until it ends (unless `from.follow` is false: then what is kept so far);
 * resolves with the last event (undefined when the client left). A failure of
 * the store once the stream is open becomes an `error` event.
 */
export async function replay(
  executions: Executions,
  tenant: string,
  id: string,
  from: { after: number; follow: boolean },
  queue: EventQueue,
  signal: AbortSignal,
): Promise<string | undefined> {
  try {
    return await follow(executions, tenant, id, from, queue, signal);
  } catch (err) {
    const error =
      err instanceof AirlockError
        ? err
        : new AirlockError("internal", "replaying the execution failed", { cause: err });
    return sseEvent("error", JSON.stringify(error.toBody()));
  }
}

async function follow(
  executions: Executions,
  tenant: string,
  id: string,
  from: { after: number; follow: boolean },
  queue: EventQueue,
  signal: AbortSignal,
): Promise<string | undefined> {
  const max = executions.state.limits.maxOutputBytes;
  let { after } = from;
  let toldDropped = 0;
  let quietSince = performance.now();
  for (;;) {
    // Subscribed before reading, so a change between the read and the wait wakes it.
    const change = executions.next(id, ["status", "output"]);
    let execution: Execution;
    let bounds: Bounds;
    let sent = false;
    try {
      // The record first: whatever was written before it ended is readable after.
      execution = await executions.find(tenant, id);
      for (;;) {
        const page = await executions.output(tenant, id, after);
        bounds = { storedBytes: page.storedBytes, droppedBytes: page.droppedBytes };
        for (const e of page.events) {
          if (queue.full) await queue.drained();
          if (queue.closed) return undefined;
          const data = Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength);
          queue.piece(e.stream, data, escapedSize(data), e.seq);
          after = e.seq;
          sent = true;
        }
        if (!page.more) break;
      }
    } catch (err) {
      change.cancel();
      throw err;
    }
    if (queue.closed) {
      change.cancel();
      return undefined;
    }
    if (isFinalExecutionStatus(execution.status)) {
      change.cancel();
      return (bounds.droppedBytes > 0 ? dropped(bounds, max) : "") + endEvent(execution);
    }
    // Not following: what is kept so far, and the stream ends without an end.
    if (!from.follow) {
      change.cancel();
      return bounds.droppedBytes > 0 ? dropped(bounds, max) : undefined;
    }
    if (bounds.droppedBytes > 0 && toldDropped === 0) {
      queue.push(Buffer.from(dropped(bounds, max)));
      toldDropped = bounds.droppedBytes;
      sent = true;
    }
    const now = performance.now();
    if (sent) quietSince = now;
    else if (now - quietSince >= KEEP_ALIVE_MS) {
      queue.push(KEEP_ALIVE);
      quietSince = now;
    }
    await change.wait(POLL_MS, signal);
  }
}
