// An Executor that runs nothing: it records jobs and answers with a canned
// result, so the HTTP layer can be tested through app.request() without Docker.

import type { Job } from "../../core/job.ts";
import type { ExecResult } from "../../core/schemas.ts";
import type { Executor, ExecutorRunOptions } from "../../executor/executor.ts";

export function okResult(id: string, stdout = ""): ExecResult {
  return {
    id,
    status: "ok",
    exitCode: 0,
    signal: null,
    stdout,
    stderr: "",
    stdoutTruncated: false,
    stderrTruncated: false,
    durationMs: 1,
    usage: { cpuMs: 1, memoryPeakBytes: 1 },
    diff: { added: [], modified: [], deleted: [], truncated: false },
    files: [],
    filesOmitted: [],
  };
}

export class FakeExecutor implements Executor {
  readonly jobs: Job[] = [];
  behaviour: (job: Job, options: ExecutorRunOptions) => Promise<ExecResult> = async (
    job,
    options,
  ) => {
    options.onOutput?.("stdout", Buffer.from("hi\n"));
    return okResult(job.id, "hi\n");
  };
  running = 0;
  waiting = 0;

  async run(job: Job, options: ExecutorRunOptions = {}): Promise<ExecResult> {
    this.jobs.push(job);
    return this.behaviour(job, options);
  }
  async reap() {
    return { containers: 0, volumes: 0 };
  }
  async drain() {}
}
