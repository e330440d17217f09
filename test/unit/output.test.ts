import { describe, expect, it } from "vitest";
import { jobPreamble, parseTrailer, shellQuote, shellWord } from "../../executor/launcher.ts";
import { CappedBuffer, FrameDemuxer, TrailerScanner } from "../../executor/output.ts";

function frame(stream: 1 | 2, payload: string): Buffer {
  const body = Buffer.from(payload);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

describe("FrameDemuxer", () => {
  it("splits stdout and stderr even when headers and payloads straddle chunks", () => {
    const wire = Buffer.concat([frame(1, "hello "), frame(2, "oops"), frame(1, "world")]);
    for (let size = 1; size <= wire.length; size++) {
      const got = { stdout: "", stderr: "" };
      const demux = new FrameDemuxer((s, p) => {
        got[s] += p.toString();
      });
      for (let i = 0; i < wire.length; i += size) demux.push(wire.subarray(i, i + size));
      expect(got).toEqual({ stdout: "hello world", stderr: "oops" });
    }
  });
});

describe("CappedBuffer", () => {
  it("keeps the first cap bytes and counts the rest", () => {
    const buf = new CappedBuffer(5);
    buf.push(Buffer.from("abc"));
    expect(buf.overflowed).toBe(false);
    expect(buf.push(Buffer.from("defgh")).toString()).toBe("de");
    expect(buf.push(Buffer.from("ij")).length).toBe(0);
    expect(buf.toString()).toBe("abcde");
    expect(buf.total).toBe(10);
    expect(buf.overflowed).toBe(true);
    expect(buf.truncated).toBe(true);
  });

  it("passes everything within the cap but keeps only `keep` bytes", () => {
    const buf = new CappedBuffer(8, 3);
    expect(buf.push(Buffer.from("abcde")).toString()).toBe("abcde");
    expect(buf.push(Buffer.from("fghij")).toString()).toBe("fgh");
    expect(buf.toString()).toBe("abc");
    expect(buf.overflowed).toBe(true);
    expect(buf.truncated).toBe(true);
    const small = new CappedBuffer(8, 3);
    small.push(Buffer.from("ab"));
    expect(small.truncated).toBe(false);
  });
});

describe("TrailerScanner", () => {
  const nonce = "0123456789abcdef0123456789abcdef";
  const trailer = `\x1e${nonce} 3 ns2500000 1048576 0\n`;

  it("cuts the trailer wherever chunk boundaries fall", () => {
    const wire = Buffer.from(`line 1\nline 2${trailer}late`);
    for (let size = 1; size <= wire.length; size++) {
      const scanner = new TrailerScanner(nonce);
      let out = "";
      for (let i = 0; i < wire.length; i += size)
        out += scanner.push(wire.subarray(i, i + size)).toString();
      out += scanner.flush().toString();
      expect(out).toBe("line 1\nline 2");
      expect(scanner.found).toBe(true);
      expect(parseTrailer(scanner.trailerText())).toEqual({
        exitCode: 3,
        cpuMs: 3,
        memoryPeakBytes: 1048576,
        oomKills: 0,
      });
    }
  });

  it("passes ordinary output through at once, holding back nothing", () => {
    const scanner = new TrailerScanner(nonce);
    expect(scanner.push(Buffer.from("1\n")).toString()).toBe("1\n");
  });

  it("does not take a forged marker with the wrong nonce", () => {
    const scanner = new TrailerScanner(nonce);
    const forged = `\x1e${"f".repeat(32)} 0 - -\n`;
    const out = scanner.push(Buffer.from(forged)).toString() + scanner.flush().toString();
    expect(out).toBe(forged);
    expect(scanner.found).toBe(false);
  });

  it("parses cgroup v2 microseconds and missing values", () => {
    expect(parseTrailer(" 0 us1500 - -\n")).toEqual({
      exitCode: 0,
      cpuMs: 2,
      memoryPeakBytes: null,
      oomKills: null,
    });
    expect(parseTrailer(" 0 - - -")).toBeUndefined();
  });
});

describe("jobPreamble", () => {
  it("quotes every value for sh that needs it, newlines and quotes included, between two nonce lines", () => {
    expect(shellQuote("it's")).toBe("'it'\\''s'");
    expect(shellWord("-c")).toBe("-c");
    expect(shellWord("a=b:c/d.e,f@g%h+i_j")).toBe("a=b:c/d.e,f@g%h+i_j");
    for (const v of [
      "",
      "a b",
      "$X",
      "*",
      "~",
      "#",
      "a;b",
      "a&b",
      "a|b",
      "<",
      ">",
      "(",
      ")",
      "\\",
      "`",
      '"',
      "?",
      "[",
      "{",
      "!",
    ]) {
      expect(shellWord(v)).toBe(shellQuote(v));
    }
    const text = jobPreamble("abc", {
      cwd: "/workspace/a b",
      env: { X: "1\n2" },
      argv: ["sh", "-c", "echo 'hi'\necho $X"],
    });
    expect(text).toBe(
      "abc tar\ncd '/workspace/a b' || exit 125; unset OLDPWD\nexport X='1\n2'\nset -- sh -c 'echo '\\''hi'\\''\necho $X'\nabc\n",
    );
  });

  it("leaves out what the container holds already (and the cd to /workspace), and exports what differs from it", () => {
    const text = jobPreamble("abc", {
      cwd: "/workspace",
      env: { PATH: "/bin", LANG: "C.UTF-8", X: "1" },
      inherited: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" },
      argv: ["true"],
    });
    expect(text).toBe("abc tar\nexport PATH=/bin\nexport X=1\nset -- true\nabc\n");
  });
});
