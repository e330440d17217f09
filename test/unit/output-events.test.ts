import { isUtf8 } from "node:buffer";
import { describe, expect, it } from "vitest";
import {
  encodeEvent,
  escapedSize,
  FrameRing,
  freshFrames,
  incompleteTail,
  MAX_EVENT_BYTES,
  OutputEventEncoder,
  OutputPieces,
} from "../../api/output-events.ts";

/** The data of each event, JSON-decoded, after checking the event is exactly what JSON.stringify makes. */
function decodeEvents(events: Buffer[], name: string): string[] {
  return events.map((event) => {
    // Valid UTF-8 on the wire: a bad sequence was replaced, not passed through.
    expect(isUtf8(event)).toBe(true);
    const text = event.toString("utf8");
    const match = /^event: (\w+)\ndata: (.*)\n\n$/s.exec(text);
    expect(match?.[1]).toBe(name);
    const data = JSON.parse(match?.[2] ?? "") as string;
    expect(typeof data).toBe("string");
    // Byte for byte what `data: ${JSON.stringify(...)}` would have sent.
    expect(text).toBe(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
    return data;
  });
}

function encode(chunks: Buffer[], name: "stdout" | "stderr" = "stdout"): string[] {
  const encoder = new OutputEventEncoder(name);
  const events: Buffer[] = [];
  const emit = (event: Buffer) => events.push(event);
  for (const chunk of chunks) encoder.write(chunk, emit);
  encoder.end(emit);
  return decodeEvents(events, name);
}

/** A deterministic generator, so a failure can be replayed. */
function random(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

// Bytes that exercise every path: plain ASCII, JSON's escapes, control bytes,
// 2-, 3- and 4-byte characters, and sequences that are not UTF-8 at all.
const PIECES = [
  "a",
  "hello world",
  '"',
  "\\",
  "\n",
  "\r\n",
  "\t",
  "\u0000",
  "\u001b[31m",
  "\u007f",
  "é",
  "€",
  "😀",
  "\u2028",
].map((s) => Buffer.from(s, "utf8"));
const INVALID = [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf0, 0x90], [0x80]].map(
  (b) => Buffer.from(b),
);

describe("OutputEventEncoder", () => {
  it("writes one event per chunk, as JSON.stringify would escape it", () => {
    expect(encode([Buffer.from('say "hi"\n\\ \u0001\u001f\t')])).toEqual([
      'say "hi"\n\\ \u0001\u001f\t',
    ]);
    expect(encode([Buffer.from("x")], "stderr")).toEqual(["x"]);
  });

  it("holds a character split between chunks and sends it whole with the next", () => {
    const euro = Buffer.from("a€b");
    expect(encode([euro.subarray(0, 2), euro.subarray(2, 3), euro.subarray(3)])).toEqual([
      "a",
      "€b",
    ]);
  });

  it("sends a character cut off at the very end as U+FFFD", () => {
    expect(encode([Buffer.from([0x61, 0xe2, 0x82])])).toEqual(["a", "\ufffd"]);
  });

  it("decodes any bytes, cut anywhere, exactly as a whole-stream UTF-8 decode does", () => {
    const next = random(42);
    for (let round = 0; round < 300; round++) {
      const parts: Buffer[] = [];
      for (let n = next(40); n >= 0; n--) {
        parts.push(
          next(5) === 0
            ? (INVALID[next(INVALID.length)] as Buffer)
            : (PIECES[next(PIECES.length)] as Buffer),
        );
      }
      const bytes = Buffer.concat(parts);
      const chunks: Buffer[] = [];
      for (let at = 0; at < bytes.length; ) {
        const size = 1 + next(8);
        chunks.push(bytes.subarray(at, at + size));
        at += size;
      }
      expect(encode(chunks).join("")).toBe(bytes.toString("utf8"));
    }
  });

  it("sends a chunk read from the engine (64 KiB) of lines of text as one event", () => {
    const chunk = Buffer.alloc(64 * 1024, `${"x".repeat(63)}\n`);
    expect(encode([chunk])).toEqual([chunk.toString("latin1")]);
  });

  it("cuts a chunk too large for one event between characters, never past the bound", () => {
    const sizes: number[] = [];
    const whole = (chunk: Buffer) => {
      const encoder = new OutputEventEncoder("stdout");
      const events: Buffer[] = [];
      encoder.write(chunk, (event) => events.push(event));
      for (const event of events) sizes.push(event.length);
      return decodeEvents(events, "stdout").join("");
    };
    // Plain, every byte escaped six-fold, and characters of 2, 3 and 4 bytes at every offset.
    const plain = Buffer.alloc(1 << 20, "x");
    expect(whole(plain)).toBe(plain.toString("latin1"));
    const control = Buffer.alloc(100_000, 1);
    expect(whole(control)).toBe(control.toString("latin1"));
    for (const shift of ["", "a", "ab", "abc"]) {
      const text = shift + "é€😀".repeat(30_000);
      expect(whole(Buffer.from(text))).toBe(text);
    }
    expect(Math.max(...sizes)).toBeLessThanOrEqual(MAX_EVENT_BYTES);
  });
});

describe("OutputPieces and encodeEvent (what an execution keeps, and its replay)", () => {
  it("each piece makes exactly one event, with its id, within the bound; a replay re-encodes it the same", () => {
    const next = random(7);
    const pieces = new OutputPieces();
    const kept: { piece: Buffer; size: number; seq: number }[] = [];
    let seq = 0;
    const keep = (piece: Buffer, size: number) =>
      kept.push({ piece: Buffer.from(piece), size, seq: ++seq });
    const parts: Buffer[] = [Buffer.alloc(200_000, 1), Buffer.from("é€😀".repeat(20_000))];
    for (let n = 0; n < 500; n++) {
      parts.push(
        next(5) === 0
          ? (INVALID[next(INVALID.length)] as Buffer)
          : (PIECES[next(PIECES.length)] as Buffer),
      );
    }
    const bytes = Buffer.concat(parts);
    for (let at = 0; at < bytes.length; ) {
      const size = 1 + next(70_000);
      pieces.write(bytes.subarray(at, at + size), keep);
      at += size;
    }
    pieces.end(keep);
    const events = kept.map((k) => encodeEvent("stderr", k.piece, k.size, freshFrames, k.seq));
    const texts: string[] = [];
    events.forEach((event, i) => {
      expect(event.length).toBeLessThanOrEqual(MAX_EVENT_BYTES);
      const match = /^event: stderr\ndata: (.*)\nid: (\d+)\n\n$/s.exec(event.toString("utf8"));
      expect(Number(match?.[2])).toBe(i + 1);
      texts.push(JSON.parse(match?.[1] ?? "") as string);
      // Read back from the store, a piece is encoded again from its bytes alone: the same event.
      const piece = kept[i]?.piece as Buffer;
      expect(escapedSize(piece)).toBe(kept[i]?.size);
      expect(encodeEvent("stderr", piece, escapedSize(piece), freshFrames, i + 1)).toEqual(event);
    });
    expect(texts.join("")).toBe(bytes.toString("utf8"));
  });
});

describe("FrameRing", () => {
  it("hands out memory again once it is given back, in order", () => {
    const ring = new FrameRing();
    const a = ring.alloc(100);
    const b = ring.alloc(200);
    expect([a.length, b.length]).toEqual([100, 200]);
    expect(b.buffer).toBe(a.buffer);
    expect(b.byteOffset).toBe(a.byteOffset + 100);
    ring.release(a);
    ring.release(b);
    expect(ring.alloc(10).byteOffset).toBe(a.byteOffset);
  });

  it("never hands out memory an event still holds, through any number of wraps", () => {
    const ring = new FrameRing();
    const next = random(7);
    // One pattern per tag, so checking an event is one native compare.
    const patterns = Array.from({ length: 16 }, (_, tag) => Buffer.alloc(MAX_EVENT_BYTES, tag));
    const live: { frame: Buffer; tag: number }[] = [];
    let fresh = 0;
    for (let i = 0; i < 5000; i++) {
      const tag = i % 16;
      const frame = ring.alloc(1 + next(MAX_EVENT_BYTES));
      if (frame.buffer.byteLength !== FrameRing.BYTES) fresh++;
      frame.fill(tag);
      live.push({ frame, tag });
      // Give back the oldest few, as a socket would, after checking nothing wrote over them.
      for (let n = next(3); n > 0 || live.length > 6; n--) {
        const oldest = live.shift();
        if (oldest === undefined) break;
        expect(
          oldest.frame.equals(
            patterns[oldest.tag]?.subarray(0, oldest.frame.length) ?? Buffer.alloc(0),
          ),
        ).toBe(true);
        ring.release(oldest.frame);
      }
    }
    // Most events came from the ring; the rest (no room left) from fresh memory.
    expect(fresh).toBeLessThan(5000 / 2);
  });

  it("gives fresh memory when the ring is full, and ignores it when given back", () => {
    const ring = new FrameRing();
    const held = [
      ring.alloc(MAX_EVENT_BYTES),
      ring.alloc(MAX_EVENT_BYTES),
      ring.alloc(MAX_EVENT_BYTES),
    ];
    const extra = ring.alloc(MAX_EVENT_BYTES);
    expect(extra.buffer).not.toBe(held[0]?.buffer);
    ring.release(extra);
    for (const frame of held) ring.release(frame);
    expect(ring.alloc(10).buffer).toBe(held[0]?.buffer);
  });

  it("stops reusing memory once events come back out of order", () => {
    const ring = new FrameRing();
    const a = ring.alloc(100).fill(1);
    const b = ring.alloc(100).fill(2);
    ring.release(b);
    const c = ring.alloc(100).fill(3);
    expect(c.buffer).not.toBe(a.buffer);
    expect(a.every((byte) => byte === 1)).toBe(true);
  });

  it("carries events an encoder writes into it, unchanged", () => {
    const ring = new FrameRing();
    const encoder = new OutputEventEncoder("stderr", ring);
    const data: string[] = [];
    for (const text of ["one\n", "two €\n", "three\n"]) {
      encoder.write(Buffer.from(text), (event) => {
        data.push(...decodeEvents([event], "stderr"));
        ring.release(event);
      });
    }
    expect(data).toEqual(["one\n", "two €\n", "three\n"]);
  });
});

describe("incompleteTail", () => {
  it("counts only the start of a character still missing bytes", () => {
    const tail = (...b: number[]) => incompleteTail(Buffer.from(b));
    expect(tail()).toBe(0);
    expect(tail(0x61)).toBe(0);
    expect(tail(0xc3)).toBe(1);
    expect(tail(0xc3, 0xa9)).toBe(0);
    expect(tail(0xe2, 0x82)).toBe(2);
    expect(tail(0xf0, 0x9f, 0x98)).toBe(3);
    expect(tail(0xf0, 0x9f, 0x98, 0x80)).toBe(0);
    // Stray continuation bytes complete nothing: they decode (to U+FFFD) at once.
    expect(tail(0x80, 0x80, 0x80)).toBe(0);
  });
});
