// AIRLOCK_MAX_BODY_BYTES on every request body, as 413 payload_too_large. A
// body of known length is refused from its Content-Length before a byte is
// read. One of unknown length (chunked) is buffered and counted by hono's
// bodyLimit on most routes, whose handlers read the whole body anyway; but a
// streamed upload (PUT …/archive, read entry by entry as it arrives) is
// counted as it is read instead, so that it is never held whole.
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { AirlockError } from "../core/errors.ts";

/** The routes whose handler streams the request body. */
const STREAMED = /^\/v1\/workspaces\/[^/]+\/archive$/;

export function limitBodies(maxBytes: number): MiddlewareHandler {
  const tooLarge = () =>
    new AirlockError("payload_too_large", `the body is larger than ${maxBytes} bytes`, {
      details: { maxBytes },
    });
  const buffered = bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw tooLarge();
    },
  });
  return async (c, next) => {
    if (c.req.method !== "PUT" || !STREAMED.test(c.req.path)) return buffered(c, next);
    countAsRead(c, maxBytes, tooLarge);
    await next();
  };
}

/** Refuses a declared length past the limit now; otherwise fails the body's stream once it passes the limit. */
function countAsRead(c: Context, maxBytes: number, tooLarge: () => AirlockError): void {
  const { raw } = c.req;
  if (raw.body === null) return;
  const declared = raw.headers.get("content-length");
  if (declared !== null && !raw.headers.has("transfer-encoding")) {
    if (Number(declared) > maxBytes) throw tooLarge();
    return;
  }
  let seen = 0;
  const counted = raw.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.length;
        if (seen > maxBytes) controller.error(tooLarge());
        else controller.enqueue(chunk);
      },
    }),
  );
  c.req.raw = new Request(raw, { body: counted, duplex: "half" } as RequestInit);
}
