// Where one request's time goes, phase by phase (the Server-Timing header and
// the bench's phase table). Any layer marks the end of a phase with
// phase("name"); the mark goes to the request's own clock through its async
// context, so no layer passes a clock to another, and outside a timed request
// (or with timing off) a mark costs one lookup that finds nothing.
import { AsyncLocalStorage } from "node:async_hooks";

/** One request's phases, in the order they ended; each lasts from the previous mark. */
export class PhaseClock {
  readonly phases: [name: string, ms: number][] = [];
  private readonly t0 = performance.now();
  private last = this.t0;

  mark(name: string): void {
    const now = performance.now();
    this.phases.push([name, now - this.last]);
    this.last = now;
  }

  /** Milliseconds since the clock started. */
  elapsed(): number {
    return performance.now() - this.t0;
  }

  /** RFC Server-Timing: `name;dur=ms` for each phase (a name marked twice adds up), and `total`. */
  header(): string {
    const sums = new Map<string, number>();
    for (const [name, ms] of this.phases) sums.set(name, (sums.get(name) ?? 0) + ms);
    sums.set("total", this.elapsed());
    return [...sums].map(([name, ms]) => `${name};dur=${ms.toFixed(2)}`).join(", ");
  }
}

const current = new AsyncLocalStorage<PhaseClock>();

/** Marks the end of a phase of the request being served, if it is timed. */
export function phase(name: string): void {
  current.getStore()?.mark(name);
}

/** Runs `fn` (and everything it starts) with `clock` as the request's clock. */
export function timed<T>(clock: PhaseClock, fn: () => T): T {
  return current.run(clock, fn);
}

/** Parses a Server-Timing header back into phases (the bench's reading of it). */
export function parseServerTiming(header: string | null): Map<string, number> {
  const phases = new Map<string, number>();
  for (const part of header?.split(",") ?? []) {
    const match = /^\s*([\w.-]+);dur=([\d.]+)\s*$/.exec(part);
    if (match !== null) phases.set(match[1] as string, Number(match[2]));
  }
  return phases;
}
