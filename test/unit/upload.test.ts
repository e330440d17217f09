import { describe, expect, it } from "vitest";
import { AirlockError } from "../../core/errors.ts";
import { checkUpload, repack } from "../../executor/upload.ts";
import { WorkspaceLocks } from "../../executor/workspace-lock.ts";
import { makeTar, readTar, type TarEntry } from "../support/tar.ts";

const limits = { maxEntries: 10, maxBytes: 100 };

async function problem(entries: TarEntry[]): Promise<string> {
  try {
    await checkUpload(await makeTar(entries), limits);
  } catch (err) {
    expect(err).toBeInstanceOf(AirlockError);
    return (err as AirlockError).message;
  }
  throw new Error("accepted");
}

describe("checkUpload", () => {
  it("accepts files, directories and links inside, and re-packs them clean", async () => {
    const upload = await checkUpload(
      await makeTar([
        { name: "./src/", type: "directory", mode: 0o700 },
        { name: "./src/main.py", mode: 0o4755, body: "print(1)" },
        { name: "src/alias.py", type: "symlink", linkname: "main.py" },
        { name: "copy.py", type: "link", linkname: "src/main.py" },
      ]),
      limits,
    );
    expect(upload.bytes).toBe(8);
    const back = await readTar(await readAll(repack(upload, { uid: 1000, gid: 1000 })));
    expect(back.map((e) => [e.name, e.type, e.mode])).toEqual([
      ["src/", "directory", 0o700],
      ["src/main.py", "file", 0o755], // setuid bit stripped
      ["src/alias.py", "symlink", 0o777],
      ["copy.py", "link", 0o777],
    ]);
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
    expect(text).toContain("nothing was written");
  });
});

it("accepts chains of links that stay inside, whatever their order", async () => {
  const upload = await checkUpload(
    await makeTar([
      { name: "alias", type: "symlink", linkname: "d/inner/.." },
      { name: "d/inner", type: "symlink", linkname: "../e" },
      { name: "e/f", body: "x" },
      { name: "up", type: "symlink", linkname: "d/inner/../d" },
    ]),
    limits,
  );
  expect(upload.entries.map((e) => e.name)).toEqual(["alias", "d/inner", "e/f", "up"]);
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
