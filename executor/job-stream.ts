// One job's attach stream, wired: Docker's frames → the launcher's protocol
// (launcher-stream.ts) → the job's output under its caps, the listings, and
// the launcher's tar of /workspace, handed on as a Readable. The stream pauses
// while anyone downstream is full (the diff reading that tar, or a slow SSE
// client) and flows when none is.
import { type Duplex, PassThrough } from "node:stream";
import type { Job, OutputListener } from "../core/job.ts";
import { WORKSPACE_DIR } from "../core/paths.ts";
import { jobHeader, jobLines, RUN_LINE } from "./launcher.ts";
import { type LauncherMode, LauncherStream, type RawListing } from "./launcher-stream.ts";
import { listingCap } from "./listing.ts";
import { CappedBuffer, FrameDemuxer, JobOutput } from "./output.ts";

type Hold = "tar" | "consumer";

export interface JobStreamOptions {
  nonce: string;
  mode: LauncherMode;
  /** Bytes of each stream kept for the result (all of the cap, unless the output is streamed). */
  keep: number;
  onOutput?: OutputListener | undefined;
  /** Resolves when a consumer that said it was full can take more. */
  outputDrained?: (() => Promise<void>) | undefined;
  /** A stream passed the output cap. */
  overflow: () => void;
}

export class JobStream {
  readonly output: JobOutput;
  readonly launcher: LauncherStream;
  /** /workspace as the launcher sends it after the trailer (a workspace job: what changed). */
  readonly tar = new PassThrough();
  /** List mode: the listing before the job. */
  readonly listedBefore: Promise<RawListing>;
  /** The launcher's trailer is in (launcher.trailer). */
  readonly trailerIn: Promise<"trailer">;
  /** List mode: the listing after the run; undefined if it never comes whole. */
  readonly listedAfter: Promise<RawListing | undefined>;
  /** The attach stream ended, closed or failed. */
  readonly ended: Promise<void>;
  /**
   * A compiled job: what the compiler wrote (kept up to the output cap, never
   * killed for it: the compile's time limit bounds it), and its exit code
   * once its stage is over (undefined when the marker was malformed).
   */
  readonly compileOutput: { stdout: CappedBuffer; stderr: CappedBuffer } | undefined;
  readonly compiledIn: Promise<number | undefined>;
  private readonly stream: Duplex;
  readonly mode: LauncherMode;
  private readonly nonce: string;
  private readonly holds = new Set<Hold>();
  private readonly noListingAfter: () => void;

  constructor(stream: Duplex, job: Job, options: JobStreamOptions) {
    this.stream = stream;
    this.nonce = options.nonce;
    this.mode = options.mode;
    const { outputDrained } = options;
    this.output = new JobOutput({
      cap: job.limits.outputBytes,
      keep: options.keep,
      listener: options.onOutput,
      full: () => {
        if (outputDrained === undefined || this.holds.has("consumer")) return;
        this.hold("consumer");
        void outputDrained().then(() => this.letGo("consumer"));
      },
      overflow: options.overflow,
    });
    const before = Promise.withResolvers<RawListing>();
    const trailer = Promise.withResolvers<"trailer">();
    const after = Promise.withResolvers<RawListing | undefined>();
    this.listedBefore = before.promise;
    this.trailerIn = trailer.promise;
    this.listedAfter = after.promise;
    this.noListingAfter = () => after.resolve(undefined);
    const cap = listingCap(job.profile.diff.scanMaxEntries);
    const compiled = Promise.withResolvers<number | undefined>();
    this.compiledIn = compiled.promise;
    const compileOutput =
      job.compile === undefined
        ? undefined
        : {
            stdout: new CappedBuffer(job.limits.outputBytes),
            stderr: new CappedBuffer(job.limits.outputBytes),
          };
    this.compileOutput = compileOutput;
    this.launcher = new LauncherStream(
      this.nonce,
      this.mode,
      cap,
      {
        compileOutput: (name, bytes) => compileOutput?.[name].push(bytes),
        compiled: compiled.resolve,
        output: (name, bytes) => this.output.push(name, bytes),
        listedBefore: before.resolve,
        trailer: () => trailer.resolve("trailer"),
        listedAfter: after.resolve,
        tar: (bytes) => this.feedTar(bytes),
        tarEnd: () => {
          if (!this.tar.destroyed) this.tar.end();
        },
      },
      job.compile !== undefined,
    );
    this.ended = streamEnd(stream);
    const demux = new FrameDemuxer((name, payload) => this.launcher.push(name, payload));
    stream.on("data", (chunk: Buffer) => demux.push(chunk));
    // A stream that ends before the listing is whole leaves none; nor does a tar given up on.
    void this.ended.then(this.noListingAfter);
    this.tar.once("close", () => {
      this.launcher.dropTar();
      this.noListingAfter();
    });
  }

  /** The first line: the nonce, and what the launcher is to send besides the output. */
  sendHeader(): void {
    this.stream.write(jobHeader(this.nonce, this.mode));
  }

  /**
   * The job's lines and its stdin, then the end of the launcher's input. A
   * compiled job's stdin waits for sendRun, after its compile stage.
   */
  sendJob(job: Job): void {
    const cwd = job.workdir === "" ? WORKSPACE_DIR : `${WORKSPACE_DIR}/${job.workdir}`;
    const compile = job.compile?.argv;
    const inherited = job.profile.env;
    this.stream.write(
      jobLines(this.nonce, { cwd, env: job.env, inherited, argv: job.argv, compile }),
    );
    if (compile === undefined) this.sendStdin(job);
  }

  /** A compiled job, its compile stage over and the run's limits set: let it run. */
  sendRun(job: Job): void {
    this.stream.write(RUN_LINE);
    this.sendStdin(job);
  }

  private sendStdin(job: Job): void {
    if (job.stdin.length > 0) this.stream.write(job.stdin);
    this.stream.end();
  }

  /**
   * Nobody will read the launcher's tar now: drop it, and let the stream flow
   * (it may be paused for backpressure) so the engine can finish with it.
   */
  abandonTar(): void {
    this.tar.destroy();
    this.holds.clear();
    this.stream.resume();
  }

  /** Closes everything; called once the tar has been read, or when the run failed. */
  release(): void {
    this.tar.destroy();
    this.noListingAfter();
    this.stream.destroy();
  }

  private feedTar(bytes: Buffer): void {
    // The diff stopped reading (past its caps) and closed the tar.
    if (this.tar.destroyed) return;
    // Backpressure: the attach stream waits while the diff reads the tar.
    if (!this.tar.write(bytes) && !this.holds.has("tar")) {
      this.hold("tar");
      this.tar.once("drain", () => this.letGo("tar"));
    }
  }

  private hold(why: Hold): void {
    this.holds.add(why);
    this.stream.pause();
  }

  private letGo(why: Hold): void {
    this.holds.delete(why);
    if (this.holds.size === 0) this.stream.resume();
  }
}

function streamEnd(stream: Duplex): Promise<void> {
  return new Promise((resolve) => {
    stream.once("end", resolve);
    stream.once("close", resolve);
    stream.once("error", () => resolve());
  });
}
