import { describe, expect, it } from "vitest";
import { ListingBuffer, parseListing } from "../../executor/listing.ts";

const rec = (...records: string[]) => Buffer.from(records.map((r) => `${r}\0`).join(""));

describe("parseListing", () => {
  it("reads find's records: type, size, the stat record, paths with spaces and newlines", () => {
    const listing = parseListing(
      rec(
        "f 1234 10 1795433342.1968941770 1795433342.1968941770 644 d000/f00000",
        "l 99 5 1795433342.1 1795433342.2 777 a link",
        "f 7 0 -315619200.0000000000 1795433342.2 600 odd\nname ü",
      ),
      10,
    );
    expect(listing).toEqual(
      new Map([
        [
          "d000/f00000",
          {
            type: "file",
            size: 10,
            stat: "f 1234 10 1795433342.1968941770 1795433342.1968941770 644",
          },
        ],
        ["a link", { type: "symlink", size: 5, stat: "l 99 5 1795433342.1 1795433342.2 777" }],
        [
          "odd\nname ü",
          { type: "file", size: 0, stat: "f 7 0 -315619200.0000000000 1795433342.2 600" },
        ],
      ]),
    );
  });

  it("reads an empty listing as an empty workspace", () => {
    expect(parseListing(Buffer.alloc(0), 10)).toEqual(new Map());
  });

  it("leaves the inode out where the runtime numbers inodes per sandbox", () => {
    const listing = parseListing(rec("f 1234 10 1.5 2.5 644 a"), 10, false);
    expect(listing?.get("a")?.stat).toBe("f - 10 1.5 2.5 644");
  });

  it.each([
    ["a record without its NUL", Buffer.from("f 1 1 1.0 1.0 644 a")],
    ["a directory", rec("d 1 4096 1.0 1.0 755 dir")],
    ["a missing field", rec("f 1 1 1.0 644 a")],
    ["a non-number size", rec("f 1 x 1.0 1.0 644 a")],
    ["a non-octal mode", rec("f 1 1 1.0 1.0 688 a")],
    ["an empty path", rec("f 1 1 1.0 1.0 644 ")],
    ["an absolute path", rec("f 1 1 1.0 1.0 644 /etc/passwd")],
    ["a .. segment", rec("f 1 1 1.0 1.0 644 a/../../etc/passwd")],
    ["a . segment", rec("f 1 1 1.0 1.0 644 ./a")],
    ["an empty segment", rec("f 1 1 1.0 1.0 644 a//b")],
    ["a repeated path", rec("f 1 1 1.0 1.0 644 a", "f 2 1 1.0 1.0 644 a")],
  ])("refuses the whole listing for %s", (_what, data) => {
    expect(parseListing(data, 10)).toBeUndefined();
  });

  it("refuses a listing with more entries than allowed", () => {
    const three = rec("f 1 1 1.0 1.0 644 a", "f 2 1 1.0 1.0 644 b", "f 3 1 1.0 1.0 644 c");
    expect(parseListing(three, 3)?.size).toBe(3);
    expect(parseListing(three, 2)).toBeUndefined();
  });

  it("takes names that only look like dots", () => {
    expect([...(parseListing(rec("f 1 1 1.0 1.0 644 ..a/.b/c.."), 10)?.keys() ?? [])]).toEqual([
      "..a/.b/c..",
    ]);
  });
});

describe("ListingBuffer", () => {
  it("keeps what arrives up to its cap, and nothing once past it", () => {
    const buffer = new ListingBuffer(6);
    buffer.push(Buffer.from("abc"));
    buffer.push(Buffer.from("def"));
    expect(buffer.data().toString()).toBe("abcdef");
    expect(buffer.overflowed).toBe(false);
    buffer.push(Buffer.from("g"));
    expect(buffer.overflowed).toBe(true);
    expect(buffer.data().length).toBe(0);
  });
});
