// The launcher's protocol fed as bytes: Docker-framed wires cut at every
// boundary, forged and malformed markers, streams that stop short, output caps.
import { describe, expect, it } from "vitest";
import type { Trailer } from "../../executor/launcher.ts";
import {
  type LauncherEvents,
  type LauncherMode,
  LauncherStream,
  type RawListing,
} from "../../executor/launcher-stream.ts";
import { FrameDemuxer, JobOutput, type StreamName } from "../../executor/output.ts";

const NONCE = "0123456789abcdef0123456789abcdef";
const MARK = `\x1e${NONCE}`;
const TRAILER = `${MARK} 3 ns2500000 1048576 0\n`;
const LISTING = "f 12 4 1.5 1.5 644 a.txt\0l 13 1 1.5 1.5 777 link\0";

function frame(stream: 1 | 2, payload: string): Buffer {
  const body = Buffer.from(payload, "latin1");
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

/** Everything the machine said, in order, with output and tar bytes gathered per stream. */
class Recorder implements LauncherEvents {
  log: string[] = [];
  stdout = "";
  stderr = "";
  tarBytes = "";
  before: RawListing | undefined;
  after: RawListing | undefined;
  parsed: Trailer | undefined;
  output(stream: StreamName, bytes: Buffer) {
    expect(bytes.length).toBeGreaterThan(0);
    this[stream] += bytes.toString("latin1");
  }
  listedBefore(listing: RawListing) {
    this.log.push("listedBefore");
    this.before = listing;
  }
  trailer(trailer: Trailer) {
    this.log.push("trailer");
    this.parsed = trailer;
  }
  listedAfter(listing: RawListing) {
    this.log.push("listedAfter");
    this.after = listing;
  }
  tar(bytes: Buffer) {
    expect(bytes.length).toBeGreaterThan(0);
    this.tarBytes += bytes.toString("latin1");
  }
  tarEnd() {
    this.log.push("tarEnd");
  }
}

function machine(mode: LauncherMode, cap = 4096) {
  const events = new Recorder();
  const stream = new LauncherStream(NONCE, mode, cap, events);
  const demux = new FrameDemuxer((name, payload) => stream.push(name, payload));
  return { events, stream, feed: (chunk: Buffer) => demux.push(chunk) };
}

/** Feeds `wire` in pieces of every size, and cut in two at every byte; checks each run. */
function everySplit(mode: LauncherMode, wire: Buffer, check: (events: Recorder) => void) {
  for (let size = 1; size <= wire.length; size++) {
    const m = machine(mode);
    for (let i = 0; i < wire.length; i += size) m.feed(wire.subarray(i, i + size));
    m.stream.flush();
    check(m.events);
  }
  for (let cut = 0; cut <= wire.length; cut++) {
    const m = machine(mode);
    m.feed(wire.subarray(0, cut));
    m.feed(wire.subarray(cut));
    m.stream.flush();
    check(m.events);
  }
}

const oneShotWire = Buffer.concat([
  frame(1, "hello \x1e"),
  frame(2, "oops"),
  frame(1, `world${TRAILER}TARBYTES`),
  frame(2, `${MARK}\n`),
  frame(1, `more tar${MARK}\nleft over`),
]);

const workspaceWire = Buffer.concat([
  frame(1, `${LISTING}${MARK} 0\nout`),
  frame(2, "err"),
  // The launcher ends stderr before it prints the trailer.
  frame(2, `${MARK}\n`),
  frame(1, `put${TRAILER}${LISTING}${MARK} 1\nCHANGED`),
  frame(1, `${MARK}\nignored`),
]);

describe("LauncherStream, tar mode (a one-shot job)", () => {
  it("cuts output, trailer and tar apart wherever the chunks split", () => {
    everySplit("tar", oneShotWire, (events) => {
      expect(events.stdout).toBe("hello \x1eworld");
      expect(events.stderr).toBe("oops");
      expect(events.parsed).toEqual({
        exitCode: 3,
        cpuMs: 3,
        memoryPeakBytes: 1048576,
        oomKills: 0,
      });
      expect(events.tarBytes).toBe("TARBYTESmore tar");
      expect(events.log).toEqual(["trailer", "tarEnd"]);
    });
  });

  it("counts the trailer only once stderr's marker is in too", () => {
    const m = machine("tar");
    m.feed(frame(1, `x${TRAILER}`));
    expect(m.events.log).toEqual([]);
    expect(m.stream.step).toBe("tar");
    m.feed(frame(2, `${MARK}\n`));
    expect(m.events.log).toEqual(["trailer"]);
    expect(m.stream.trailer?.exitCode).toBe(3);
  });

  it("takes no trailer from a marker with another nonce: it is the job's output", () => {
    const forged = `\x1e${"f".repeat(32)} 0 - - -\n`;
    const m = machine("tar");
    m.feed(Buffer.concat([frame(1, forged), frame(2, `\x1e${"f".repeat(32)}\n`)]));
    m.stream.flush();
    expect(m.events.stdout).toBe(forged);
    expect(m.events.stderr).toBe(`\x1e${"f".repeat(32)}\n`);
    expect(m.events.log).toEqual([]);
    expect(m.stream.step).toBe("output");
  });

  it("takes no trailer from a marker that stops short of the whole nonce", () => {
    const m = machine("tar");
    m.feed(frame(1, `\x1e${NONCE.slice(0, 31)} 0 - - -\n`));
    m.stream.flush();
    expect(m.events.stdout).toBe(`\x1e${NONCE.slice(0, 31)} 0 - - -\n`);
    expect(m.stream.trailer).toBeUndefined();
  });

  it("moves on to the tar past a malformed trailer line, but reports no trailer", () => {
    const m = machine("tar");
    m.feed(Buffer.concat([frame(1, `${MARK} oops\nTAR`), frame(2, `${MARK}\n`)]));
    expect(m.stream.trailer).toBeUndefined();
    expect(m.events.log).toEqual([]);
    expect(m.events.tarBytes).toBe("TAR");
  });

  it("gives back, at the end, output held as a marker's possible start", () => {
    const m = machine("tar");
    m.feed(frame(1, `abc${MARK.slice(0, 10)}`));
    expect(m.events.stdout).toBe("abc");
    m.stream.flush();
    expect(m.events.stdout).toBe(`abc${MARK.slice(0, 10)}`);
    expect(m.events.log).toEqual([]);
  });

  it("ends nothing on a stream cut off inside the trailer or the tar", () => {
    const midTrailer = machine("tar");
    midTrailer.feed(frame(1, `out${TRAILER.slice(0, 20)}`));
    expect(midTrailer.events.stdout).toBe("out");
    // Never proved a marker, the held part is the job's, as far as anyone can tell.
    midTrailer.stream.flush();
    expect(midTrailer.events.stdout).toBe(`out${TRAILER.slice(0, 20)}`);
    expect(midTrailer.stream.trailer).toBeUndefined();
    const midTar = machine("tar");
    midTar.feed(Buffer.concat([frame(1, `${TRAILER}TAR${MARK.slice(0, 5)}`), frame(2, MARK)]));
    midTar.stream.flush();
    expect(midTar.events.tarBytes).toBe("TAR");
    expect(midTar.events.log).toEqual(["trailer"]);
  });

  it("stops scanning a tar nobody reads", () => {
    const m = machine("tar");
    m.feed(frame(1, `${TRAILER}AB`));
    m.stream.dropTar();
    m.feed(frame(1, `CD${MARK}\n`));
    expect(m.events.tarBytes).toBe("AB");
    expect(m.events.log).not.toContain("tarEnd");
    expect(m.stream.step).toBe("done");
  });

  it("hands ordinary output on as it came, without a copy", () => {
    const events = new Recorder();
    const seen: Buffer[] = [];
    events.output = (_stream, bytes) => seen.push(bytes);
    const stream = new LauncherStream(NONCE, "tar", 4096, events);
    const chunk = Buffer.from("plain output\n");
    stream.push("stdout", chunk);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBe(chunk);
  });
});

describe("LauncherStream, list mode (a workspace job)", () => {
  it("goes listing → output → trailer → listing → tar wherever the chunks split", () => {
    everySplit("list", workspaceWire, (events) => {
      expect(events.before).toEqual({
        data: Buffer.from(LISTING, "latin1"),
        status: 0,
        overflowed: false,
      });
      expect(events.stdout).toBe("output");
      expect(events.stderr).toBe("err");
      expect(events.parsed?.exitCode).toBe(3);
      expect(events.after).toEqual({
        data: Buffer.from(LISTING, "latin1"),
        status: 1,
        overflowed: false,
      });
      expect(events.tarBytes).toBe("CHANGED");
      expect(events.log).toEqual(["listedBefore", "trailer", "listedAfter", "tarEnd"]);
    });
  });

  it("passes stderr through while stdout is still the listing's", () => {
    const m = machine("list");
    m.feed(Buffer.concat([frame(1, "f 1 1 1 1 644 a\0"), frame(2, "early")]));
    expect(m.events.stderr).toBe("early");
    expect(m.events.stdout).toBe("");
    expect(m.stream.step).toBe("listing");
  });

  it("marks a listing past its cap as overflowed, and one whose end line is malformed as statusless", () => {
    const m = machine("list", 8);
    m.feed(frame(1, `${LISTING}${MARK} x\n`));
    expect(m.events.before).toEqual({ data: Buffer.alloc(0), status: undefined, overflowed: true });
    expect(m.stream.step).toBe("output");
  });

  it("leaves the listing after unannounced when the stream stops inside it", () => {
    const m = machine("list");
    m.feed(Buffer.concat([frame(1, `${MARK} 0\n${TRAILER}f 1 1`), frame(2, `${MARK}\n`)]));
    m.stream.flush();
    expect(m.events.log).toEqual(["listedBefore", "trailer"]);
    expect(m.stream.step).toBe("after-listing");
  });
});

describe("LauncherStream with the job's output caps", () => {
  function capped(cap: number, keep: number, listener?: (s: StreamName, b: Buffer) => boolean) {
    const seen: string[] = [];
    let overflows = 0;
    let fulls = 0;
    const output = new JobOutput({
      cap,
      keep,
      listener: (s, b) => {
        seen.push(`${s}:${b.toString()}`);
        return listener?.(s, b);
      },
      full: () => fulls++,
      overflow: () => overflows++,
    });
    const events = new Recorder();
    events.output = (stream, bytes) => output.push(stream, bytes);
    const stream = new LauncherStream(NONCE, "tar", 4096, events);
    const demux = new FrameDemuxer((name, payload) => stream.push(name, payload));
    return { output, seen, demux, counts: () => ({ overflows, fulls }) };
  }

  it("passes on only what is within the cap, and says when a stream overflows", () => {
    const c = capped(5, 5);
    c.demux.push(Buffer.concat([frame(1, "abc"), frame(1, "defg"), frame(2, "xy")]));
    expect(c.seen).toEqual(["stdout:abc", "stdout:de", "stderr:xy"]);
    expect(c.output.stdout.toString()).toBe("abcde");
    expect(c.output.stdout.truncated).toBe(true);
    expect(c.output.stderr.toString()).toBe("xy");
    expect(c.counts().overflows).toBe(1);
  });

  it("never counts the launcher's trailer or tar as output", () => {
    const c = capped(4, 4);
    c.demux.push(
      Buffer.concat([frame(1, `abcd${TRAILER}${"T".repeat(100)}`), frame(2, `${MARK}\n`)]),
    );
    expect(c.output.stdout.toString()).toBe("abcd");
    expect(c.counts().overflows).toBe(0);
  });

  it("keeps less than the cap for a streamed job, and says when the listener is full", () => {
    const c = capped(100, 3, () => false);
    c.demux.push(frame(1, "abcdef"));
    expect(c.seen).toEqual(["stdout:abcdef"]);
    expect(c.output.stdout.toString()).toBe("abc");
    expect(c.counts()).toEqual({ overflows: 0, fulls: 1 });
  });
});

describe("a compiled job's compile step", () => {
  /** The compiler's output, its markers, then the program's output and the trailer, as one wire. */
  const wire = Buffer.concat([
    frame(1, "cc says hi\n"),
    frame(2, "main.c:1: warning\n"),
    frame(1, `${MARK} compile 0\n`),
    frame(2, `${MARK}\nprogram err\n`),
    frame(1, "program out\n"),
    frame(2, `${MARK}\n`),
    frame(1, TRAILER),
  ]);

  function feed(bytes: Buffer, cut: number) {
    const got = { compileOut: "", compileErr: "", compiled: [] as (number | undefined)[] };
    const rec = new Recorder();
    const stream = new LauncherStream(
      NONCE,
      "tar",
      1024,
      Object.assign(rec, {
        compileOutput: (s: StreamName, b: Buffer) => {
          if (s === "stdout") got.compileOut += b.toString("latin1");
          else got.compileErr += b.toString("latin1");
        },
        compiled: (code: number | undefined) => got.compiled.push(code),
      }),
      true,
    );
    const demux = new FrameDemuxer((name, payload) => stream.push(name, payload));
    for (let i = 0; i < bytes.length; i += cut) demux.push(bytes.subarray(i, i + cut));
    return { rec, got };
  }

  it.each([1, 3, 7, 1000])("keeps the compiler's output apart, cut every %i bytes", (cut) => {
    const { rec, got } = feed(wire, cut);
    expect(got).toEqual({
      compileOut: "cc says hi\n",
      compileErr: "main.c:1: warning\n",
      compiled: [0],
    });
    expect(rec.stdout).toBe("program out\n");
    expect(rec.stderr).toBe("program err\n");
    expect(rec.parsed?.exitCode).toBe(3);
  });

  it("reports a failed compile's exit code", () => {
    const failed = Buffer.concat([
      frame(2, "error: x\n"),
      frame(1, `${MARK} compile 1\n`),
      frame(2, `${MARK}\n${MARK}\n`),
      frame(1, `${MARK} 1 ns100 10 0\n`),
    ]);
    const { rec, got } = feed(failed, 5);
    expect(got.compiled).toEqual([1]);
    expect(got.compileErr).toBe("error: x\n");
    expect(rec.stdout + rec.stderr).toBe("");
    expect(rec.parsed?.exitCode).toBe(1);
  });
});
