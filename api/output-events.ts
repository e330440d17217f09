// Turns a job's raw output bytes into SSE `stdout`/`stderr` events whose data
// is a JSON string, without ever making a JavaScript string of the output.
// Decoding to a string, JSON.stringify, formatting the event and encoding it
// again cost four copies of every chunk on the V8 heap; 16 jobs streaming
// 100 MB each made that churn most of the gateway's resident memory. Here a
// chunk becomes one Buffer (a few, past MAX_EVENT_BYTES): the event's bytes,
// with the output escaped as JSON escapes it, in memory the transport may
// reuse (FrameRing). The events read exactly as before: the data of the
// events of a stream, JSON-decoded and joined, is the stream's bytes decoded
// as UTF-8 (an invalid sequence becomes U+FFFD, and a character split between
// two chunks is sent whole, with the later chunk).
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

/** Where an encoder gets the memory for each event. */
export interface FrameSource {
  /** A buffer of exactly `bytes` bytes (at most MAX_EVENT_BYTES) for the next event. */
  alloc(bytes: number): Buffer;
}

/** Every event in fresh memory, sized to fit: for transports that never say when a write is done. */
export const freshFrames: FrameSource = { alloc: (bytes) => Buffer.allocUnsafe(bytes) };

/**
 * An event never exceeds this, whatever the chunk: a chunk longer once escaped
 * is sent as several events, cut between characters. A chunk read from the
 * engine is at most 64 KiB, so plain output still goes as one event per chunk.
 */
export const MAX_EVENT_BYTES = 72 * 1024;

/**
 * Event memory that is used again once the transport is done with it. A
 * streamed event waits for a slow client for tens of milliseconds, long enough
 * for V8 to move its buffer to the old generation, where it is freed only by
 * a full collection; those come after ~64 MB of such garbage, so 16 fast
 * streams held 25-45 MB of dead buffers. Here one response's events are cut
 * from one ring of memory, in order, and given back in the same order (a
 * socket flushes writes in order), so a long stream reuses the same memory.
 * Backpressure keeps what is in flight below that; an event that does not
 * fit gets fresh memory, as do all of them once the order is broken (a
 * response whose socket failed gives back nothing, or out of order).
 */
export class FrameRing implements FrameSource {
  static readonly BYTES = 256 * 1024;
  private readonly bytes: number;
  private memory: Buffer | undefined;
  /** The events not given back yet, oldest first, as offsets into `memory`. */
  private readonly spans: { start: number; end: number }[] = [];
  private broken = false;

  /** `bytes`: what backpressure lets be in flight at once, so the ring is rarely short. */
  constructor(bytes: number = FrameRing.BYTES) {
    this.bytes = bytes;
  }

  alloc(bytes: number): Buffer {
    if (this.broken) return Buffer.allocUnsafe(bytes);
    this.memory ??= Buffer.allocUnsafeSlow(this.bytes);
    const at = this.room(bytes);
    if (at === undefined) return Buffer.allocUnsafe(bytes);
    this.spans.push({ start: at, end: at + bytes });
    return this.memory.subarray(at, at + bytes);
  }

  /**
   * Gives back the oldest event still out. The caller must be sure that
   * nothing reads it any more. An event from fresh memory is ignored.
   */
  release(frame: Buffer): void {
    if (this.memory === undefined || frame.buffer !== this.memory.buffer) return;
    const oldest = this.spans.shift();
    if (oldest === undefined || frame.byteOffset !== this.memory.byteOffset + oldest.start) {
      // Out of order: the ring can no longer tell what is free.
      this.broken = true;
      this.memory = undefined;
      this.spans.length = 0;
    }
  }

  /** Where `bytes` fit after the newest event without reaching the oldest, if anywhere. */
  private room(bytes: number): number | undefined {
    const oldest = this.spans[0];
    const newest = this.spans.at(-1);
    if (oldest === undefined || newest === undefined) return bytes <= this.bytes ? 0 : undefined;
    if (newest.start >= oldest.start) {
      // In use: one run from the oldest to the newest. Free: after it, and before it.
      if (this.bytes - newest.end >= bytes) return newest.end;
      return oldest.start >= bytes ? 0 : undefined;
    }
    // Wrapped: free only between the newest and the oldest.
    return oldest.start - newest.end >= bytes ? newest.end : undefined;
  }
}

/**
 * The room an event leaves for its escaped output: MAX_EVENT_BYTES less the
 * `event: stdout\ndata: "` before it and the longest `"\nid: <seq>\n\n` after.
 */
const PIECE_ROOM =
  MAX_EVENT_BYTES - prefixOf("stdout").length - idSuffix(Number.MAX_SAFE_INTEGER).length;

function prefixOf(event: "stdout" | "stderr"): Buffer {
  return Buffer.from(`event: ${event}\ndata: "`, "latin1");
}

function idSuffix(id: number): Buffer {
  return Buffer.from(`"\nid: ${id}\n\n`, "latin1");
}

/**
 * Cuts one output stream, chunk by chunk, into pieces that each make exactly
 * one event: whole characters only (a character split between two chunks
 * goes whole with the later one; invalid UTF-8 becomes U+FFFD), and never more
 * than one event's room once escaped. A piece is also what an execution keeps
 * for replay (one piece, one event id), so a replay sends exactly the events
 * the live stream did.
 */
export class OutputPieces {
  /** The start of a character whose remaining bytes are still to come. */
  private carry: Buffer | undefined;

  /** Passes the pieces of `chunk` to `emit` (with their escaped size): none when it holds only part of a character. */
  write(chunk: Buffer, emit: (piece: Buffer, size: number) => void): void {
    const data = this.carry === undefined ? chunk : Buffer.concat([this.carry, chunk]);
    const held = incompleteTail(data);
    this.carry = held === 0 ? undefined : Buffer.from(data.subarray(data.length - held));
    cut(data.subarray(0, data.length - held), emit);
  }

  /** The last piece, when the output ended in the middle of a character (sent as U+FFFD). */
  end(emit: (piece: Buffer, size: number) => void): void {
    const rest = this.carry;
    this.carry = undefined;
    if (rest !== undefined) cut(rest, emit);
  }
}

/** Whole characters → pieces that fit one event each, with their escaped sizes. */
function cut(bytes: Buffer, emit: (piece: Buffer, size: number) => void): void {
  if (bytes.length === 0) return;
  // Invalid UTF-8 (binary output) is rare: decoding it is what replaces each bad sequence.
  const text = isUtf8(bytes) ? bytes : Buffer.from(bytes.toString("utf8"), "utf8");
  for (let from = 0; from < text.length; ) {
    // As many bytes as fit once escaped, cut before a character's first byte.
    let to = from;
    let size = 0;
    for (; to < text.length; to++) {
      const cost = 1 + (EXTRA[text[to] as number] as number);
      if (size + cost > PIECE_ROOM) break;
      size += cost;
    }
    // Only bytes below 0x80 are escaped, so backing off over continuation bytes costs 1 each.
    while (to < text.length && ((text[to] as number) & 0xc0) === 0x80) {
      to--;
      size--;
    }
    emit(text.subarray(from, to), size);
    from = to;
  }
}

/** The escaped size of whole characters (a stored piece, read back for a replay). */
export function escapedSize(piece: Uint8Array): number {
  let size = piece.length;
  for (const b of piece) size += EXTRA[b] as number;
  return size;
}

/**
 * One `stdout`/`stderr` event for a piece (OutputPieces) that takes `size`
 * bytes once escaped, with `id: <id>` when given, in memory from `frames`.
 */
export function encodeEvent(
  event: "stdout" | "stderr",
  piece: Uint8Array,
  size: number,
  frames: FrameSource,
  id?: number,
): Buffer {
  const prefix = event === "stdout" ? STDOUT_PREFIX : STDERR_PREFIX;
  const suffix = id === undefined ? SUFFIX : idSuffix(id);
  const start = prefix.length;
  const frame = frames.alloc(start + size + suffix.length);
  prefix.copy(frame, 0);
  let at = start;
  if (size === piece.length)
    at += Buffer.from(piece.buffer, piece.byteOffset, piece.length).copy(frame, at);
  else {
    for (let i = 0; i < piece.length; i++) {
      const b = piece[i] as number;
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
  suffix.copy(frame, at);
  return frame;
}

const STDOUT_PREFIX = prefixOf("stdout");
const STDERR_PREFIX = prefixOf("stderr");

/** The SSE events of one output stream (`stdout` or `stderr`), chunk by chunk, without ids. */
export class OutputEventEncoder {
  private readonly event: "stdout" | "stderr";
  private readonly frames: FrameSource;
  private readonly pieces = new OutputPieces();

  constructor(event: "stdout" | "stderr", frames: FrameSource = freshFrames) {
    this.event = event;
    this.frames = frames;
  }

  /** Passes the events for `chunk` to `emit`: none when it holds only part of a character. */
  write(chunk: Buffer, emit: (event: Buffer) => void): void {
    this.pieces.write(chunk, (piece, size) =>
      emit(encodeEvent(this.event, piece, size, this.frames)),
    );
  }

  /** The last event, when the output ended in the middle of a character (sent as U+FFFD). */
  end(emit: (event: Buffer) => void): void {
    this.pieces.end((piece, size) => emit(encodeEvent(this.event, piece, size, this.frames)));
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
