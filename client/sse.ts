// Reads the gateway's exec event stream: `stdout`/`stderr` events whose data is
// a JSON string, then one `result` (ExecResult JSON), `error` (error body) or
// `end` ({id, status}: cancelled meanwhile, thrown as execution_cancelled, 409).
import { EventSourceParserStream } from "eventsource-parser/stream";
import type { ExecEvent, ExecResult } from "../core/schemas.ts";
import { AirlockApiError, errorFromEvent } from "./errors.ts";

/** `end`: the execution was cancelled (DELETE, a stop) while streamed, so there is no result. */
function endedWithoutResult(data: string): AirlockApiError {
  const end = JSON.parse(data) as { id?: string; status?: string };
  return new AirlockApiError(409, {
    code: `execution_${end.status ?? "ended"}`,
    message: `execution ${end.id ?? "?"} ended ${end.status ?? ""} without a result`,
    details: end,
  });
}

export async function* readExecEvents(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<ExecEvent, void, undefined> {
  const events = body
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(new EventSourceParserStream());
  for await (const event of events) {
    if (event.event === "stdout" || event.event === "stderr") {
      yield { type: event.event, data: JSON.parse(event.data) as string };
    } else if (event.event === "result") {
      yield { type: "result", result: JSON.parse(event.data) as ExecResult };
      return;
    } else if (event.event === "error") {
      throw errorFromEvent(event.data);
    } else if (event.event === "end") {
      throw endedWithoutResult(event.data);
    }
  }
  throw new AirlockApiError(502, {
    code: "internal",
    message: "the event stream ended without a result",
  });
}
