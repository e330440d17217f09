// Reads the gateway's exec event stream: `stdout`/`stderr` events whose data is
// a JSON string, then one `result` (ExecResult JSON) or `error` (error body).
import { EventSourceParserStream } from "eventsource-parser/stream";
import type { ExecEvent, ExecResult } from "../core/schemas.ts";
import { AirlockApiError, errorFromEvent } from "./errors.ts";

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
    }
  }
  throw new AirlockApiError(502, {
    code: "internal",
    message: "the event stream ended without a result",
  });
}
