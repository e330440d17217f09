// The egress contract between who decides and who connects: the rules a job's
// granted networks give it (built by policies/egress.ts), which the executor's
// filtering proxy asks about every connection, and the record of each
// connection the result carries (DESIGN.md, "Egress").
import { z } from "zod";

export const EgressDecision = z.enum(["allowed", "denied"]);
export type EgressDecision = z.infer<typeof EgressDecision>;

/** One connection (or refused attempt) a job made through the proxy. */
export const EgressEntry = z.object({
  host: z.string(),
  port: z.number(),
  decision: EgressDecision,
  reason: z.string().optional(),
  /** The network that allowed it (absent when denied). */
  network: z.string().optional(),
  bytesOut: z.number(),
  bytesIn: z.number(),
});
export type EgressEntry = z.infer<typeof EgressEntry>;

export interface EgressVerdict {
  decision: EgressDecision;
  reason: string;
  /** The network whose entry allowed it. */
  network?: string;
}

/** A header the proxy adds to requests to one host; its value never enters the sandbox. */
export interface InjectedHeader {
  header: string;
  value: string;
}

/** What a job may reach: the union of the networks it asked for and was granted. */
export interface EgressRules {
  readonly networks: readonly string[];
  /**
   * The decision for `host:port`: on the name and port alone when `address` is
   * undefined, else on the address actually dialled too (after resolution).
   */
  check(host: string, port: number, address?: string): EgressVerdict;
  /** The address a `resolve` pin gives `host`, if any network pins it. */
  pinned(host: string): string | undefined;
  /** Headers to add to requests to `host` (the proxy then terminates TLS for it). */
  inject(host: string): readonly InjectedHeader[];
}
