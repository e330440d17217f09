import { describe, expect, it } from "vitest";
import { isOrphan } from "../../executor/reaper.ts";

const obj = (instance: string, deadline?: number) => ({
  id: "x",
  labels:
    deadline === undefined
      ? { airlock: instance }
      : { airlock: instance, "airlock.deadline": String(deadline) },
});

describe("isOrphan", () => {
  const now = 1_000_000;
  it("never takes a sibling's live job", () => {
    expect(isOrphan(obj("other", now + 5000), { instanceId: "me", includeOwn: true, now })).toBe(
      false,
    );
  });
  it("takes anything past its deadline", () => {
    expect(isOrphan(obj("other", now - 1), { instanceId: "me", includeOwn: false, now })).toBe(
      true,
    );
  });
  it("takes its own leftovers only when asked", () => {
    expect(isOrphan(obj("me", now + 5000), { instanceId: "me", includeOwn: false, now })).toBe(
      false,
    );
    expect(isOrphan(obj("me", now + 5000), { instanceId: "me", includeOwn: true, now })).toBe(true);
  });
  it("leaves alone what has no readable deadline and is not its own", () => {
    expect(isOrphan(obj("other"), { instanceId: "me", includeOwn: true, now })).toBe(false);
  });
});
