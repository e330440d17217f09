// One execution's output on its way out of the sandbox: cut into pieces that
// each make one SSE event (api/output-events.ts), numbered from 1, queued for
// the store's replay log (a cheap enqueue: the store writes in batches) and
// handed to the live client of a streamed request, if one is attached. The
// number is the event's `id:`, so a client that lost its stream asks
// GET /v1/executions/:id/events for what came after the last id it saw and
// gets exactly the events it missed.
import type { OutputRecords, OutputStream } from "../../core/state.ts";
import { OutputPieces } from "../output-events.ts";

/** Where a streamed request's client takes the pieces as they come. */
export interface OutputSink {
  /** One piece of output, event `seq`, `size` bytes once escaped as JSON. */
  piece(stream: OutputStream, piece: Buffer, size: number, seq: number): void;
  /** The client is too far behind: the sandbox should stop reading until drained(). */
  readonly full: boolean;
  drained(): Promise<void>;
}

export class ExecutionOutput {
  private readonly id: string;
  private readonly store: OutputRecords;
  private readonly changed: () => void;
  private readonly streams = { stdout: new OutputPieces(), stderr: new OutputPieces() };
  private seq = 0;
  /** The client of a streamed request; absent once it left (or for JSON and async requests). */
  sink: OutputSink | undefined;

  /** `changed` is called after each piece (followers of the execution read it from the store). */
  constructor(id: string, store: OutputRecords, changed: () => void) {
    this.id = id;
    this.store = store;
    this.changed = changed;
  }

  /** RunOptions.onOutput: false while the live client is too far behind. */
  readonly write = (stream: OutputStream, chunk: Buffer): boolean => {
    this.streams[stream].write(chunk, (piece, size) => this.emit(stream, piece, size));
    return this.sink?.full !== true;
  };

  /** RunOptions.outputDrained. */
  readonly drained = (): Promise<void> => this.sink?.drained() ?? Promise.resolve();

  /** The job is over: a character cut off at the very end goes out (as U+FFFD). */
  end(): void {
    this.streams.stdout.end((piece, size) => this.emit("stdout", piece, size));
    this.streams.stderr.end((piece, size) => this.emit("stderr", piece, size));
  }

  private emit(stream: OutputStream, piece: Buffer, size: number): void {
    const seq = ++this.seq;
    this.store.append(this.id, { seq, stream, data: piece });
    this.sink?.piece(stream, piece, size, seq);
    this.changed();
  }
}
