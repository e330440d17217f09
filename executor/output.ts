// Output of a running sandbox: Docker's multiplexed attach stream is split into
// stdout and stderr, each kept up to the job's byte cap (so the gateway's memory
// stays bounded however much is printed), with the launcher's markers cut out
// (launcher-stream.ts says which marker ends what). Hand-written because
// dockerode's demuxStream neither caps nor lets us see frame boundaries, and a
// marker must be found across chunk boundaries. This is the hot path of every
// job: no step copies a chunk or allocates per chunk beyond what a marker split
// across chunks needs.
import type { OutputListener } from "../core/job.ts";
import { TRAILER_START } from "./launcher.ts";

export type StreamName = "stdout" | "stderr";

/** Shared by every "nothing here" answer: a zero-length buffer cannot be written to. */
const EMPTY = Buffer.alloc(0);

/**
 * Counts a stream's bytes against its limit (`cap`) and keeps the first `keep`
 * of them for the result. `keep` is the cap itself for a JSON answer; a streamed
 * job has already sent its output as events, so its result keeps less.
 */
export class CappedBuffer {
  readonly cap: number;
  private readonly keepCap: number;
  private chunks: Buffer[] = [];
  private kept = 0;
  total = 0;

  constructor(cap: number, keep: number = cap) {
    this.cap = cap;
    this.keepCap = Math.min(keep, cap);
  }

  /** Returns the part of `chunk` within the cap (empty once it is reached), keeping what fits. */
  push(chunk: Buffer): Buffer {
    const before = this.total;
    this.total += chunk.length;
    const room = this.cap - before;
    if (room <= 0) return EMPTY;
    const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
    const keepRoom = this.keepCap - this.kept;
    if (keepRoom > 0) {
      const keep = part.length <= keepRoom ? part : part.subarray(0, keepRoom);
      this.chunks.push(Buffer.from(keep));
      this.kept += keep.length;
    }
    return part;
  }

  /** The stream passed its cap: the job is killed for it. */
  get overflowed(): boolean {
    return this.total > this.cap;
  }

  /** The kept copy is shorter than what the job wrote. */
  get truncated(): boolean {
    return this.total > this.kept;
  }

  toString(): string {
    return Buffer.concat(this.chunks, this.kept).toString("utf8");
  }
}

/**
 * The job's two output streams: each counted against the job's cap and kept
 * for its result, and what is within the cap passed to the listener as it
 * comes. A streamed job keeps less than its cap: its output went out as events.
 */
export class JobOutput {
  readonly stdout: CappedBuffer;
  readonly stderr: CappedBuffer;
  private readonly listener: OutputListener | undefined;
  private readonly full: () => void;
  private readonly overflow: () => void;

  constructor(options: {
    cap: number;
    keep: number;
    listener: OutputListener | undefined;
    /** The listener said it is full (returned false). */
    full: () => void;
    /** A stream passed the cap: the job is to be killed for it. */
    overflow: () => void;
  }) {
    this.stdout = new CappedBuffer(options.cap, options.keep);
    this.stderr = new CappedBuffer(options.cap, options.keep);
    this.listener = options.listener;
    this.full = options.full;
    this.overflow = options.overflow;
  }

  push(name: StreamName, bytes: Buffer): void {
    const sink = name === "stdout" ? this.stdout : this.stderr;
    // Streamed output obeys the same cap as the result: nothing past it goes out.
    const within = sink.push(bytes);
    if (within.length > 0 && this.listener?.(name, within) === false) this.full();
    if (sink.overflowed) this.overflow();
  }
}

/**
 * Finds `\x1e<nonce>` in a byte stream, then the rest of its line. Bytes before
 * the marker pass through; the line is the trailer; what follows the line is
 * kept for whatever comes next (takeRest). Only a suffix that could still begin
 * the marker is held back, so ordinary output streams without delay.
 */
export class TrailerScanner {
  private readonly marker: Buffer;
  private pending: Buffer = EMPTY;
  private line: Buffer[] = [];
  private lineBytes = 0;
  private lineDone = false;
  private rest: Buffer = EMPTY;
  found = false;

  constructor(nonce: string) {
    this.marker = Buffer.concat([Buffer.from([TRAILER_START]), Buffer.from(nonce, "latin1")]);
  }

  /** Returns the bytes that are certainly user output. */
  push(chunk: Buffer): Buffer {
    if (this.found) {
      this.afterMarker(chunk);
      return EMPTY;
    }
    const buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const at = buf.indexOf(this.marker);
    if (at >= 0) {
      this.found = true;
      this.pending = EMPTY;
      this.afterMarker(buf.subarray(at + this.marker.length));
      return buf.subarray(0, at);
    }
    const hold = this.heldSuffixLength(buf);
    if (hold === 0) {
      this.pending = EMPTY;
      return buf;
    }
    this.pending = Buffer.from(buf.subarray(buf.length - hold));
    return buf.subarray(0, buf.length - hold);
  }

  /** True once the whole trailer line (up to its newline) is in. */
  get complete(): boolean {
    return this.lineDone;
  }

  /** What is left at the end of the stream (a held suffix that never became the marker). */
  flush(): Buffer {
    const rest = this.pending;
    this.pending = EMPTY;
    return rest;
  }

  trailerText(): string {
    return Buffer.concat(this.line).toString("latin1");
  }

  /** Once complete: the bytes pushed after the trailer line, which belong to what comes next. */
  takeRest(): Buffer {
    const rest = this.rest;
    this.rest = EMPTY;
    return rest;
  }

  private afterMarker(chunk: Buffer): void {
    if (this.lineDone) {
      if (chunk.length > 0) {
        this.rest = this.rest.length === 0 ? chunk : Buffer.concat([this.rest, chunk]);
      }
      return;
    }
    const nl = chunk.indexOf(0x0a);
    const part = nl < 0 ? chunk : chunk.subarray(0, nl + 1);
    // The trailer is one short line; a longer one is not ours to keep.
    if (this.lineBytes < 256) {
      this.line.push(Buffer.from(part));
      this.lineBytes += part.length;
    }
    if (nl >= 0) {
      this.lineDone = true;
      this.rest = chunk.subarray(nl + 1);
    }
  }

  /** The longest tail of `buf` that is a beginning of the marker (it starts at an \x1e). */
  private heldSuffixLength(buf: Buffer): number {
    let at = buf.indexOf(TRAILER_START, Math.max(0, buf.length - (this.marker.length - 1)));
    while (at >= 0) {
      const len = buf.length - at;
      if (buf.compare(this.marker, 0, len, at) === 0) return len;
      at = buf.indexOf(TRAILER_START, at + 1);
    }
    return 0;
  }
}

/**
 * Parses Docker's attach framing: 8-byte header (stream id, 3 zero bytes,
 * big-endian payload length) then the payload. Calls `onFrame` per payload piece.
 */
export class FrameDemuxer {
  /** A header split across chunks, gathered here; one whole in its chunk is read in place. */
  private readonly header = Buffer.alloc(8);
  private headerBytes = 0;
  private remaining = 0;
  private stream: StreamName = "stdout";
  private readonly onFrame: (stream: StreamName, payload: Buffer) => void;

  constructor(onFrame: (stream: StreamName, payload: Buffer) => void) {
    this.onFrame = onFrame;
  }

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.remaining > 0) {
        const end = Math.min(chunk.length, offset + this.remaining);
        const take = offset === 0 && end === chunk.length ? chunk : chunk.subarray(offset, end);
        this.remaining -= end - offset;
        offset = end;
        this.onFrame(this.stream, take);
      } else if (this.headerBytes === 0 && chunk.length - offset >= 8) {
        this.startFrame(chunk, offset);
        offset += 8;
      } else {
        const end = Math.min(chunk.length, offset + 8 - this.headerBytes);
        chunk.copy(this.header, this.headerBytes, offset, end);
        this.headerBytes += end - offset;
        offset = end;
        if (this.headerBytes < 8) return;
        this.headerBytes = 0;
        this.startFrame(this.header, 0);
      }
    }
  }

  private startFrame(header: Buffer, at: number): void {
    this.stream = header[at] === 2 ? "stderr" : "stdout";
    this.remaining = header.readUInt32BE(at + 4);
  }
}
