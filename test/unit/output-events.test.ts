import { isUtf8 } from "node:buffer";
import { describe, expect, it } from "vitest";
import { incompleteTail, OutputEventEncoder } from "../../api/output-events.ts";

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
  for (const chunk of chunks) {
    const event = encoder.write(chunk);
    if (event !== undefined) events.push(event);
  }
  const last = encoder.end();
  if (last !== undefined) events.push(last);
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

  it("copies a large plain chunk through unchanged", () => {
    const big = Buffer.alloc(1 << 20, "x");
    expect(encode([big])).toEqual([big.toString("latin1")]);
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
