// The gateway's side of the launcher's protocol (launcher.ts), as a small state
// machine over the demuxed attach stream. stdout goes through these steps:
//   list mode (a workspace job): listing → [compile] → output → trailer → listing → tar → done
//   tar mode (a one-shot job):              [compile] → output → trailer → tar → done
// and stderr through [compile →] output → its end marker. A compiled
// language's compile step ends at `\x1e<nonce> compile <code>` on stdout and
// `\x1e<nonce>` on stderr; its bytes are the compiler's, kept apart. Each step ends at `\x1e<nonce>`
// (the nonce is in nothing the job can read, so it cannot end a step early), a
// listing or the trailer at the end of that marker's line; whatever follows in
// the same chunk starts the next step. No I/O and no waiting here: frames in,
// typed events out, so every boundary is tested with byte sequences alone.
import { parseCompileEnd, parseListingEnd, parseTrailer, type Trailer } from "./launcher.ts";
import { ListingBuffer } from "./listing.ts";
import { type StreamName, TrailerScanner } from "./output.ts";

/** What the launcher sends besides the job's output: `tar`, /workspace after the run; `list`, listings around it and a tar of what changed. */
export type LauncherMode = "tar" | "list";

/** Where stdout is in the protocol. */
export type LauncherStep = "listing" | "compile" | "output" | "after-listing" | "tar" | "done";

/** A listing as it came, before it is judged usable. */
export interface RawListing {
  data: Buffer;
  /** find's exit status; undefined when its end line was malformed. */
  status: number | undefined;
  /** Longer than the listing cap: only its length was counted. */
  overflowed: boolean;
}

export interface LauncherEvents {
  /** Bytes the job wrote (never empty), with the launcher's markers cut out. */
  output(stream: StreamName, bytes: Buffer): void;
  /** List mode: the listing made before any code of the job existed is whole. */
  listedBefore(listing: RawListing): void;
  /** Both streams' end markers are in and stdout's trailer line is well-formed (at most once). */
  trailer(trailer: Trailer): void;
  /** List mode: the listing made after the run is whole. */
  listedAfter(listing: RawListing): void;
  /** A piece (never empty) of the tar the launcher sends last. */
  tar(bytes: Buffer): void;
  /** The tar's end marker came. */
  tarEnd(): void;
  /** Bytes the compile stage wrote (never empty). */
  compileOutput?(stream: StreamName, bytes: Buffer): void;
  /** Both streams' compile markers are in: the compiler's exit code (undefined if malformed). */
  compiled?(exitCode: number | undefined): void;
}

export class LauncherStream {
  /** The parsed trailer, once `trailer` has been emitted. */
  trailer: Trailer | undefined;
  private stepNow: LauncherStep;
  private readonly nonce: string;
  private readonly mode: LauncherMode;
  private readonly events: LauncherEvents;
  private readonly listingCap: number;
  /** stdout's current step's scanner: each step ends at a marker of its own. */
  private scanner: TrailerScanner;
  private readonly errScan: TrailerScanner;
  private listing: ListingBuffer | undefined;
  private trailerLine: string | undefined;
  private tarDropped = false;
  /** A compiled job: stderr's compile step's scanner, until its marker line is in. */
  private errCompile: TrailerScanner | undefined;
  private compileLine: string | undefined;
  private readonly compiles: boolean;

  constructor(
    nonce: string,
    mode: LauncherMode,
    listingCap: number,
    events: LauncherEvents,
    compiles = false,
  ) {
    this.nonce = nonce;
    this.mode = mode;
    this.events = events;
    this.listingCap = listingCap;
    this.scanner = new TrailerScanner(nonce);
    // The launcher marks the end of stderr too; its marker is just the nonce.
    this.errScan = new TrailerScanner(nonce);
    this.compiles = compiles;
    if (compiles) this.errCompile = new TrailerScanner(nonce);
    this.stepNow = mode === "list" ? "listing" : compiles ? "compile" : "output";
    if (mode === "list") this.listing = new ListingBuffer(listingCap);
  }

  get step(): LauncherStep {
    return this.stepNow;
  }

  /** One payload piece of a frame, as the demuxer hands it over. */
  push(stream: StreamName, payload: Buffer): void {
    if (stream === "stderr") this.pushStderr(payload);
    else this.pushStdout(payload);
  }

  /** At the stream's end: output held back as a marker's possible start that never became one. */
  flush(): void {
    if (this.stepNow === "output" || this.stepNow === "compile") {
      const held = this.scanner.flush();
      if (held.length > 0 && this.stepNow === "output") this.events.output("stdout", held);
      if (held.length > 0 && this.stepNow === "compile")
        this.events.compileOutput?.("stdout", held);
    }
    const heldCompile = this.errCompile?.flush() ?? Buffer.alloc(0);
    if (heldCompile.length > 0) this.events.compileOutput?.("stderr", heldCompile);
    const held = this.errScan.flush();
    if (held.length > 0) this.events.output("stderr", held);
  }

  /** Nobody reads the tar any more: its bytes are dropped unscanned from now on. */
  dropTar(): void {
    this.tarDropped = true;
    if (this.stepNow === "tar") this.stepNow = "done";
  }

  private pushStdout(chunk: Buffer): void {
    let bytes = chunk;
    while (bytes.length > 0 && this.stepNow !== "done") {
      const scanner = this.scanner;
      this.take(scanner.push(bytes));
      // The tar's end marker carries no line worth waiting for.
      if (!(this.stepNow === "tar" ? scanner.found : scanner.complete)) return;
      bytes = scanner.takeRest();
      this.next();
    }
  }

  /** What the current step's scanner let through: this step's own bytes. */
  private take(bytes: Buffer): void {
    if (bytes.length === 0) return;
    switch (this.stepNow) {
      case "output":
        this.events.output("stdout", bytes);
        return;
      case "compile":
        this.events.compileOutput?.("stdout", bytes);
        return;
      case "listing":
      case "after-listing":
        this.listing?.push(bytes);
        return;
      case "tar":
        this.events.tar(bytes);
        return;
      case "done":
        return;
    }
  }

  /** The current step's marker (and line) is in: its event, then the next step. */
  private next(): void {
    switch (this.stepNow) {
      case "listing":
        this.events.listedBefore(this.finishListing());
        this.enter(this.compiles ? "compile" : "output");
        return;
      case "compile":
        this.compileLine = this.scanner.trailerText();
        this.checkCompiled();
        this.enter("output");
        return;
      case "output":
        this.trailerLine = this.scanner.trailerText();
        this.checkTrailer();
        this.enter(this.mode === "list" ? "after-listing" : "tar");
        return;
      case "after-listing":
        this.events.listedAfter(this.finishListing());
        this.enter("tar");
        return;
      case "tar":
        this.events.tarEnd();
        this.enter("done");
        return;
      case "done":
        return;
    }
  }

  private enter(step: LauncherStep): void {
    this.stepNow = step === "tar" && this.tarDropped ? "done" : step;
    this.scanner = new TrailerScanner(this.nonce);
    if (step === "after-listing") this.listing = new ListingBuffer(this.listingCap);
  }

  private finishListing(): RawListing {
    const buffer = this.listing ?? new ListingBuffer(this.listingCap);
    this.listing = undefined;
    return {
      data: buffer.data(),
      status: parseListingEnd(this.scanner.trailerText()),
      overflowed: buffer.overflowed,
    };
  }

  private pushStderr(chunk: Buffer): void {
    let input = chunk;
    const compile = this.errCompile;
    if (compile !== undefined) {
      const own = compile.push(input);
      if (own.length > 0) this.events.compileOutput?.("stderr", own);
      if (!compile.complete) return;
      this.errCompile = undefined;
      this.checkCompiled();
      input = compile.takeRest();
      if (input.length === 0) return;
    }
    // Past its marker stderr holds nothing of the job's.
    if (this.errScan.found) return;
    const bytes = this.errScan.push(input);
    if (bytes.length > 0) this.events.output("stderr", bytes);
    if (this.errScan.found) this.checkTrailer();
  }

  /** The compile stage counts as over once both streams' markers are in. */
  private checkCompiled(): void {
    if (this.compileLine === undefined || this.errCompile !== undefined) return;
    const line = this.compileLine;
    this.compileLine = undefined;
    this.events.compiled?.(parseCompileEnd(line));
  }

  /** The trailer counts once both streams have ended: all the job's output is in by then. */
  private checkTrailer(): void {
    if (this.trailer !== undefined || this.trailerLine === undefined || !this.errScan.found) return;
    this.trailer = parseTrailer(this.trailerLine);
    if (this.trailer !== undefined) this.events.trailer(this.trailer);
  }
}
