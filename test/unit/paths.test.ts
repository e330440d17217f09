import { describe, expect, it } from "vitest";
import { AirlockError } from "../../core/errors.ts";
import { parentDirs, pathProblem, safeRelativePath } from "../../core/paths.ts";

describe("safeRelativePath", () => {
  it.each([
    ["main.py", "main.py"],
    ["./src//app.py", "src/app.py"],
    ["a/./b/", "a/b"],
    ["ünïcødé/файл.txt", "ünïcødé/файл.txt"],
  ])("accepts %j as %j", (raw, expected) => {
    expect(safeRelativePath(raw, "files[0].path")).toBe(expected);
  });

  it.each([
    ["", "is empty"],
    ["../etc/passwd", "'..'"],
    ["a/../../b", "'..'"],
    ["/etc/passwd", "absolute"],
    ["a\0b", "NUL"],
    ["a\\b", "backslash"],
    ["x".repeat(256), "longer than 255"],
    [`${"a/".repeat(2100)}b`, "longer than 4096"],
    [".", "names /workspace itself"],
    ["./", "names /workspace itself"],
  ])("rejects %j (%s)", (raw, reason) => {
    expect(pathProblem(raw)).toContain(reason);
    try {
      safeRelativePath(raw, "files[3].path");
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(AirlockError);
      expect((err as AirlockError).code).toBe("invalid_request");
      expect((err as AirlockError).message).toContain("files[3].path");
    }
  });

  it("lists parent directories outermost first", () => {
    expect(parentDirs("a/b/c.txt")).toEqual(["a", "a/b"]);
    expect(parentDirs("c.txt")).toEqual([]);
  });
});
