// A second "gateway" for the embedded store's concurrency test: a worker
// thread with its own connection to the same file, run by plain Node (no
// vitest transform), doing execution lifecycles, output and idempotency
// begins at the same time as its sibling.
import { parentPort, workerData } from "node:worker_threads";
import { openSqliteState } from "../../state/sqlite.ts";

interface Input {
  dataDir: string;
  name: string;
  executions: number;
  keys: number;
  /** Two counters: both workers wait until both are ready, so their writes overlap. */
  barrier: SharedArrayBuffer;
}

const input = workerData as Input;
const gate = new Int32Array(input.barrier);
Atomics.add(gate, 0, 1);
while (Atomics.load(gate, 0) < 2) Atomics.wait(gate, 0, 1, 5);

const store = await openSqliteState({ dataDir: input.dataDir, outputBatchEvents: 8 });
const won: string[] = [];
for (let i = 0; i < Math.max(input.executions, input.keys); i++) {
  if (i < input.executions) {
    const id = `${input.name}-${i}`;
    await store.executions.create({ id, tenant: "t", profile: "shell", instanceId: input.name });
    await store.executions.transition(id, "running");
    for (let seq = 1; seq <= 3; seq++) {
      store.output.append(id, { seq, stream: "stdout", data: Buffer.from(`${id}:${seq}\n`) });
    }
    await store.executions.transition(id, "done", { result: { id } });
  }
  if (i < input.keys) {
    const begin = await store.idempotency.begin("t", `key-${i}`, "fp", {
      ttlMs: 60_000,
      instanceId: input.name,
    });
    if (begin.state === "new") won.push(`key-${i}`);
  }
}
await store.close();
parentPort?.postMessage({ won });
