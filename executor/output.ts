// Output of a running sandbox: Docker's multiplexed attach stream is split into
// stdout and stderr, each kept up to the job's byte cap (so the gateway's memory
// stays bounded however much is printed), with the launcher's trailer cut off
// stdout. Hand-written because dockerode's demuxStream neither caps nor lets us
// see frame boundaries, and the trailer must be found across chunk boundaries.
import { TRAILER_START } from "./launcher.ts";

export type StreamName = "stdout" | "stderr";

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
    if (room <= 0) return Buffer.alloc(0);
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
 * Finds `\x1e<nonce>` in a byte stream. Bytes before it pass through; bytes
 * after it are the trailer. Only a suffix that could still begin the marker is
 * held back, so ordinary output streams without delay.
 */
export class TrailerScanner {
  private readonly marker: Buffer;
  private pending: Buffer = Buffer.alloc(0);
  private line: Buffer[] = [];
  private lineBytes = 0;
  private lineDone = false;
  /** Receives what the launcher sends after the trailer line (the workspace as a tar). */
  onAfter: ((chunk: Buffer) => void) | undefined;
  found = false;

  constructor(nonce: string) {
    this.marker = Buffer.concat([Buffer.from([TRAILER_START]), Buffer.from(nonce, "latin1")]);
  }

  /** Returns the bytes that are certainly user output. */
  push(chunk: Buffer): Buffer {
    if (this.found) {
      this.afterMarker(chunk);
      return Buffer.alloc(0);
    }
    const buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const at = buf.indexOf(this.marker);
    if (at >= 0) {
      this.found = true;
      this.pending = Buffer.alloc(0);
      this.afterMarker(buf.subarray(at + this.marker.length));
      return buf.subarray(0, at);
    }
    const hold = this.heldSuffixLength(buf);
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
    this.pending = Buffer.alloc(0);
    return rest;
  }

  trailerText(): string {
    return Buffer.concat(this.line).toString("latin1");
  }

  private afterMarker(chunk: Buffer): void {
    if (this.lineDone) {
      if (chunk.length > 0) this.onAfter?.(chunk);
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
      const rest = chunk.subarray(nl + 1);
      if (rest.length > 0) this.onAfter?.(rest);
    }
  }

  private heldSuffixLength(buf: Buffer): number {
    const max = Math.min(this.marker.length - 1, buf.length);
    for (let len = max; len > 0; len--) {
      if (buf.subarray(buf.length - len).equals(this.marker.subarray(0, len))) return len;
    }
    return 0;
  }
}

/**
 * Parses Docker's attach framing: 8-byte header (stream id, 3 zero bytes,
 * big-endian payload length) then the payload. Calls `onFrame` per payload piece.
 */
export class FrameDemuxer {
  private header = Buffer.alloc(0);
  private remaining = 0;
  private stream: StreamName = "stdout";
  private readonly onFrame: (stream: StreamName, payload: Buffer) => void;

  constructor(onFrame: (stream: StreamName, payload: Buffer) => void) {
    this.onFrame = onFrame;
  }

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.remaining === 0) {
        const need = 8 - this.header.length;
        const take = chunk.subarray(offset, offset + need);
        this.header =
          this.header.length === 0 ? Buffer.from(take) : Buffer.concat([this.header, take]);
        offset += take.length;
        if (this.header.length < 8) return;
        this.stream = this.header[0] === 2 ? "stderr" : "stdout";
        this.remaining = this.header.readUInt32BE(4);
        this.header = Buffer.alloc(0);
        continue;
      }
      const take = chunk.subarray(offset, offset + this.remaining);
      offset += take.length;
      this.remaining -= take.length;
      this.onFrame(this.stream, take);
    }
  }
}
