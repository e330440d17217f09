// Turns a job's raw output bytes into SSE `stdout`/`stderr` events whose data
// is a JSON string, without ever making a JavaScript string of the output.
// Decoding to a string, JSON.stringify, formatting the event and encoding it
// again cost four copies of every chunk on the V8 heap; 16 jobs streaming
// 100 MB each made that churn most of the gateway's resident memory. Here a
// chunk becomes one Buffer: the event's bytes, with the output escaped as JSON
// escapes it. The events read exactly as before: the data of the events of a
// stream, JSON-decoded and joined, is the stream's bytes decoded as UTF-8 (an
// invalid sequence becomes U+FFFD, and a character split between two chunks is
// sent whole, with the later chunk).
import { isUtf8 } from "node:buffer";

/** Extra bytes JSON needs for each byte: 1 for `\n`-style escapes, 5 for `\u00XX`, 0 for none. */
const EXTRA = new Uint8Array(256);
/** The letter of a two-character escape (`n` for a newline), or 0 for a `\u00XX` one. */
const SHORT = new Uint8Array(256);
for (let b = 0; b < 0x20; b++) EXTRA[b] = 5;
for (const [byte, letter] of [
  [0x08, "b"],
  [0x09, "t"],
  [0x0a, "n"],
  [0x0c, "f"],
  [0x0d, "r"],
  [0x22, '"'],
  [0x5c, "\\"],
] as const) {
  EXTRA[byte] = 1;
  SHORT[byte] = letter.charCodeAt(0);
}
const HEX = Buffer.from("0123456789abcdef", "latin1");
const BACKSLASH = 0x5c;
const SUFFIX = Buffer.from('"\n\n', "latin1");

/** The SSE events of one output stream (`stdout` or `stderr`), chunk by chunk. */
export class OutputEventEncoder {
  private readonly prefix: Buffer;
  /** The start of a character whose remaining bytes are still to come. */
  private carry: Buffer | undefined;

  constructor(event: "stdout" | "stderr") {
    this.prefix = Buffer.from(`event: ${event}\ndata: "`, "latin1");
  }

  /** The event for `chunk`, or undefined when it holds only part of a character. */
  write(chunk: Buffer): Buffer | undefined {
    const data = this.carry === undefined ? chunk : Buffer.concat([this.carry, chunk]);
    const held = incompleteTail(data);
    this.carry = held === 0 ? undefined : Buffer.from(data.subarray(data.length - held));
    return this.event(data.subarray(0, data.length - held));
  }

  /** The last event, when the output ended in the middle of a character (sent as U+FFFD). */
  end(): Buffer | undefined {
    const rest = this.carry;
    this.carry = undefined;
    return rest === undefined ? undefined : this.event(rest);
  }

  private event(bytes: Buffer): Buffer | undefined {
    if (bytes.length === 0) return undefined;
    // Invalid UTF-8 (binary output) is rare: decoding it is what replaces each bad sequence.
    const text = isUtf8(bytes) ? bytes : Buffer.from(bytes.toString("utf8"), "utf8");
    let extra = 0;
    for (let i = 0; i < text.length; i++) extra += EXTRA[text[i] as number] as number;
    const start = this.prefix.length;
    const frame = Buffer.allocUnsafe(start + text.length + extra + SUFFIX.length);
    this.prefix.copy(frame, 0);
    let at = start;
    if (extra === 0) at += text.copy(frame, at);
    else {
      for (let i = 0; i < text.length; i++) {
        const b = text[i] as number;
        if (EXTRA[b] === 0) {
          frame[at++] = b;
          continue;
        }
        frame[at++] = BACKSLASH;
        const letter = SHORT[b] as number;
        if (letter !== 0) {
          frame[at++] = letter;
          continue;
        }
        // u00XX, lower-case as JSON.stringify writes it.
        frame[at++] = 0x75;
        frame[at++] = 0x30;
        frame[at++] = 0x30;
        frame[at++] = HEX[b >> 4] as number;
        frame[at++] = HEX[b & 0xf] as number;
      }
    }
    SUFFIX.copy(frame, at);
    return frame;
  }
}

/**
 * How many bytes at the end of `data` begin a character that is not complete
 * yet (0-3). Only a lead byte in the last three can start one; cutting just
 * before it never changes how the whole stream decodes, since a decoder is
 * always back at a character boundary at a lead byte.
 */
export function incompleteTail(data: Buffer): number {
  const last = Math.min(3, data.length);
  for (let back = 1; back <= last; back++) {
    const b = data[data.length - back] as number;
    if (b < 0x80) return 0;
    if (b < 0xc0) continue;
    const length = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
    return length > back ? back : 0;
  }
  return 0;
}
