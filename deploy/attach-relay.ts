// The socket proxy's relay for attach, the one call that hijacks its
// connection: once the engine has switched protocols, the caller's bytes are
// the container's stdin and the engine's the container's output, so the two
// sockets are spliced. Only once it has switched: an engine that answers
// attach with a plain HTTP error (to a malformed query, or an API version it
// does not speak) keeps reading requests on that connection, and a spliced
// caller could then send any request it likes past the proxy's rules. So the
// caller's bytes wait for the engine's `101`, and on any other answer the
// answer is relayed and both connections are closed.
import type { IncomingMessage } from "node:http";
import { connect } from "node:net";
import type { Duplex } from "node:stream";

/** The engine's answer head is a few hundred bytes; one far larger is not an answer. */
const MAX_HEAD = 64 * 1024;

export function relayAttach(upstream: string, req: IncomingMessage, socket: Duplex, head: Buffer) {
  if (req.headers["transfer-encoding"] !== undefined) {
    socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
    return;
  }
  socket.pause();
  // The attach options are in the query; dockerode repeats them as a JSON
  // body, which the engine never reads: it hijacks the connection at once,
  // and whatever bytes follow the headers become the container's stdin.
  // Sent straight to the engine the body rides in the headers' packet and
  // vanishes in its read buffer; relayed, it could arrive late and reach the
  // job as input. So the relay drops it, and the engine sees no body at all.
  let skip = Number(req.headers["content-length"] ?? 0);
  const engine = connect(upstream);
  engine.on("error", () => socket.destroy());
  socket.on("error", () => engine.destroy());
  const lines = [`${req.method} ${req.url} HTTP/1.1`];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]?.toLowerCase() === "content-length") continue;
    lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
  }
  engine.write(`${lines.join("\r\n")}\r\n\r\n`);

  const forward = (chunk: Buffer) => {
    if (skip > 0) {
      const n = Math.min(skip, chunk.length);
      skip -= n;
      chunk = chunk.subarray(n);
    }
    if (chunk.length > 0 && !engine.write(chunk)) {
      socket.pause();
      engine.once("drain", () => socket.resume());
    }
  };
  let answer = Buffer.alloc(0);
  let answered = false;
  engine.once("end", () => {
    if (!answered) socket.end();
  });
  const onAnswer = (chunk: Buffer) => {
    answer = Buffer.concat([answer, chunk]);
    if (answer.indexOf("\r\n\r\n") < 0) {
      if (answer.length > MAX_HEAD) engine.destroy();
      return;
    }
    answered = true;
    engine.pause();
    engine.off("data", onAnswer);
    socket.write(answer);
    if (/^HTTP\/1\.[01] 101 /.test(answer.toString("latin1", 0, 16))) {
      forward(head);
      socket.on("data", forward);
      socket.on("end", () => engine.end());
      socket.resume();
    } else {
      // Not switched: nothing more of the caller's reaches the engine.
      engine.end();
      socket.resume();
    }
    engine.pipe(socket);
  };
  engine.on("data", onAnswer);
}
