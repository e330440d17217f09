import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { AirlockError } from "../../core/errors.ts";
import { type CheckedUpload, type CleanTarOptions, cleanTar } from "../../executor/upload.ts";
import { WorkspaceLocks } from "../../executor/workspace-lock.ts";
import { makeTar, readTar, type TarEntry } from "../support/tar.ts";

const limits = { maxEntries: 10, maxBytes: 100 };

/** The upload through cleanTar, its clean tar read as it comes: the counts and the tar, or the refusal. */
async function clean(
  entries: TarEntry[],
  more: Partial<CleanTarOptions> = {},
): Promise<{ upload: CheckedUpload; tar: Buffer }> {
  const c = cleanTar(Readable.from([await makeTar(entries)]), {
    limits,
    owner: { uid: 1000, gid: 1000 },
    under: "stage",
    ...more,
  });
  const [tar, upload] = await Promise.allSettled([readAll(c.tar), c.checked]);
  if (upload.status === "rejected") throw upload.reason;
  if (tar.status === "rejected") throw tar.reason;
  return { upload: upload.value, tar: tar.value };
}

async function problem(entries: TarEntry[]): Promise<string> {
  try {
    await clean(entries);
  } catch (err) {
    expect(err).toBeInstanceOf(AirlockError);
    return (err as AirlockError).message;
  }
  throw new Error("accepted");
}

describe("cleanTar", () => {
  it("accepts files, directories and links inside, and re-packs them clean under the staging directory", async () => {
    const { upload, tar } = await clean([
      { name: "./src/", type: "directory", mode: 0o700 },
      { name: "./src/main.py", mode: 0o4755, body: "print(1)" },
      { name: "src/alias.py", type: "symlink", linkname: "main.py" },
      { name: "copy.py", type: "link", linkname: "src/main.py" },
    ]);
    expect(upload).toEqual({ entries: 4, bytes: 8, heldBytes: 16 });
    const back = await readTar(tar);
    expect(back.map((e) => [e.name, e.type, e.mode, e.linkname])).toEqual([
      ["stage/", "directory", 0o700, null],
      ["stage/src/", "directory", 0o700, null],
      ["stage/src/main.py", "file", 0o755, null], // setuid bit stripped
      ["stage/src/alias.py", "symlink", 0o777, "main.py"],
      ["stage/copy.py", "link", 0o777, "stage/src/main.py"],
    ]);
    expect(back[2]?.body).toBe("print(1)");
  });

  it("an empty archive still makes the staging directory (it replaces the workspace with nothing)", async () => {
    const { upload, tar } = await clean([]);
    expect(upload).toEqual({ entries: 0, bytes: 0, heldBytes: 0 });
    expect((await readTar(tar)).map((e) => e.name)).toEqual(["stage/"]);
  });

  it("asks the caller about the bytes the workspace will hold after each file, and stops at its refusal", async () => {
    const seen: number[] = [];
    const refusal = new AirlockError("payload_too_large", "past the cap");
    const entries = [
      { name: "a", body: "12345" },
      { name: "b", type: "link" as const, linkname: "a" },
      { name: "c", body: "123456789" },
      { name: "d", body: "never read" },
    ];
    await expect(
      clean(entries, {
        checkHeld: (held) => {
          seen.push(held);
          if (held > 12) throw refusal;
        },
      }),
    ).rejects.toBe(refusal);
    expect(seen).toEqual([5, 10, 19]);
  });

  it("streams a file through without holding it whole", async () => {
    // Past the default high-water marks many times over: only a bounded buffer is in flight.
    const big = Buffer.alloc(8 * 1024 * 1024, 7);
    const c = cleanTar(Readable.from([await makeTar([{ name: "big.bin", body: big }])]), {
      limits: { maxEntries: 10, maxBytes: 16 * 1024 * 1024 },
      owner: { uid: 1000, gid: 1000 },
      under: "s",
    });
    let bytes = 0;
    for await (const chunk of c.tar) bytes += (chunk as Buffer).length;
    expect(await c.checked).toMatchObject({ entries: 1, bytes: big.length });
    expect(bytes).toBeGreaterThan(big.length);
  });

  it.each([
    [[{ name: "../x", body: "" }], "\"../x\" contains a '..' segment"],
    [[{ name: "/x", body: "" }], "absolute"],
    [[{ name: "l", type: "symlink", linkname: "/etc/passwd" }], "absolute path (/etc/passwd)"],
    [[{ name: "a/b/l", type: "symlink", linkname: "../../../x" }], "leads outside /workspace"],
    [
      [
        { name: "l", type: "symlink", linkname: "d" },
        { name: "l/x", body: "" },
      ],
      "passes through the symlink l",
    ],
    // A chain of links that each look inside: x/up is /workspace itself, so x/up/.. is its parent.
    [
      [
        { name: "x/up", type: "symlink", linkname: ".." },
        { name: "esc", type: "symlink", linkname: "x/up/.." },
      ],
      '"esc" is a symlink to x/up/.., which leads outside /workspace',
    ],
    // The same chain declared in the other order: the link it rests on comes later.
    [
      [
        { name: "esc", type: "symlink", linkname: "x/up/.." },
        { name: "x/up", type: "symlink", linkname: ".." },
      ],
      '"esc" is a symlink to x/up/.., which leads outside /workspace',
    ],
    [
      [
        { name: "a/b/top", type: "symlink", linkname: "../.." },
        { name: "a/c", type: "symlink", linkname: "b/top" },
        { name: "out", type: "symlink", linkname: "a/c/../x" },
      ],
      '"out" is a symlink to a/c/../x, which leads outside',
    ],
    [[{ name: "loop", type: "symlink", linkname: "loop/x" }], "(or loops)"],
    [[{ name: "h", type: "link", linkname: "nope" }], "not a file earlier"],
    [[{ name: "dev", type: "block-device" }], "block-device entry"],
    [[{ name: "big", body: Buffer.alloc(101) }], "past 100 bytes"],
    [Array.from({ length: 11 }, (_, i) => ({ name: `f${i}`, body: "" })), "limit of 10 entries"],
  ] as [TarEntry[], string][])("rejects %j naming the entry", async (entries, message) => {
    const text = await problem(entries);
    expect(text).toContain(message);
    expect(text).toContain("the workspace is unchanged");
  });
});

it("accepts chains of links that stay inside, whatever their order", async () => {
  const { upload, tar } = await clean([
    { name: "alias", type: "symlink", linkname: "d/inner/.." },
    { name: "d/inner", type: "symlink", linkname: "../e" },
    { name: "e/f", body: "x" },
    { name: "up", type: "symlink", linkname: "d/inner/../d" },
  ]);
  expect(upload.entries).toBe(4);
  // Parents the archive leaves out come as entries of their own (the engine would make them as root).
  expect((await readTar(tar)).map((e) => [e.name, e.mode])).toEqual([
    ["stage/", 0o700],
    ["stage/alias", 0o777],
    ["stage/d/", 0o755],
    ["stage/d/inner", 0o777],
    ["stage/e/", 0o755],
    ["stage/e/f", 0o644],
    ["stage/up", 0o777],
  ]);
});

async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe("WorkspaceLocks", () => {
  it("runs tasks on one id one at a time in arrival order, and different ids in parallel", async () => {
    const locks = new WorkspaceLocks();
    const log: string[] = [];
    const task = (name: string, ms: number) => async () => {
      log.push(`start ${name}`);
      await new Promise((r) => setTimeout(r, ms));
      log.push(`end ${name}`);
      if (name === "a1") throw new Error("a1 fails");
    };
    const all = Promise.allSettled([
      locks.run("a", task("a1", 30)),
      locks.run("a", task("a2", 1)),
      locks.run("b", task("b1", 5)),
    ]);
    expect(locks.busy("a")).toBe(true);
    await all;
    expect(log).toEqual(["start a1", "start b1", "end b1", "end a1", "start a2", "end a2"]);
    await new Promise((r) => setTimeout(r, 0));
    expect(locks.busy("a")).toBe(false);
  });
});
