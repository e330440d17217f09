// Collects one row per attack of the adversarial suite and prints them as a
// table at the end: what was tried, what must happen, what did happen.
export interface AttackRow {
  attack: string;
  expected: string;
  observed: string;
}

export class AttackLog {
  private readonly rows: AttackRow[] = [];

  record(attack: string, expected: string, observed: string): void {
    this.rows.push({
      attack,
      expected,
      observed: observed.replace(/\s+/g, " ").trim().slice(0, 90),
    });
  }

  table(): string {
    const widths = [6, 8, 8].map((min, i) =>
      Math.max(min, ...this.rows.map((r) => [r.attack, r.expected, r.observed][i]?.length ?? 0)),
    );
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ");
    return [
      line(["attack", "expected", "observed"]),
      widths.map((w) => "-".repeat(w)).join("-|-"),
      ...this.rows.map((r) => line([r.attack, r.expected, r.observed])),
    ].join("\n");
  }
}
