// `airlock checkpoint`, `airlock restore`, `airlock fork`: a workspace's
// checkpoints from a terminal (DESIGN.md "Workspace checkpoints"). Each prints
// the gateway's JSON answer on stdout, so a script can read ids from it.
import { parseArgs } from "node:util";
import { AirlockApiError, createClient } from "../client/index.ts";

const COMMON = `  --url URL       the gateway (default: $AIRLOCK_URL or http://127.0.0.1:8080)
  --key KEY       the API key (default: $AIRLOCK_KEY)`;

export const USAGE_CHECKPOINT = `usage: airlock checkpoint [options] <workspace id>
  take a checkpoint; prints {id, label, createdAt, bytes, entries}
  --label TEXT    a name for it
  --list          list the workspace's checkpoints instead
  --delete CP     delete checkpoint CP instead
  --diff CP       print the diff from checkpoint CP to the workspace now (or to --to CP2)
${COMMON}`;

export const USAGE_RESTORE = `usage: airlock restore [options] <workspace id> <checkpoint id>
  put the workspace back as the checkpoint has it; prints {checkpoint, diff}
${COMMON}`;

export const USAGE_FORK = `usage: airlock fork [options] <workspace id>
  new workspaces holding the workspace's files; prints {workspaces: [...]}
  --checkpoint CP   fork the checkpoint's state instead of the workspace as it is
  --count N         how many (default 1)
${COMMON}`;

type Command = "checkpoint" | "restore" | "fork";
const USAGES: Record<Command, string> = {
  checkpoint: USAGE_CHECKPOINT,
  restore: USAGE_RESTORE,
  fork: USAGE_FORK,
};

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: "string" },
      key: { type: "string" },
      label: { type: "string" },
      list: { type: "boolean" },
      delete: { type: "string" },
      diff: { type: "string" },
      to: { type: "string" },
      checkpoint: { type: "string" },
      count: { type: "string" },
    },
  });
}

/** Runs one of the three commands; the exit code: 0, 2 for a refusal or a usage error. */
export async function runCheckpointCommand(
  command: Command,
  argv: string[],
  env: NodeJS.ProcessEnv,
): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
    const want = command === "restore" ? 2 : 1;
    if (parsed.positionals.length !== want) {
      throw new Error(
        want === 2 ? "give a workspace id and a checkpoint id" : "give one workspace id",
      );
    }
  } catch (err) {
    process.stderr.write(`airlock ${command}: ${(err as Error).message}\n${USAGES[command]}\n`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  const key = v.key ?? env["AIRLOCK_KEY"];
  const client = createClient({
    baseUrl: v.url ?? env["AIRLOCK_URL"] ?? "http://127.0.0.1:8080",
    ...(key === undefined ? {} : { apiKey: key }),
  });
  const ws = client.workspaces;
  const id = positionals[0] as string;
  try {
    let answer: unknown;
    if (command === "restore") answer = await ws.restore(id, positionals[1] as string);
    else if (command === "fork") {
      answer = await ws.fork(id, {
        ...(v.checkpoint === undefined ? {} : { checkpoint: v.checkpoint }),
        ...(v.count === undefined ? {} : { count: Number(v.count) }),
      });
    } else if (v.list === true) answer = await ws.checkpoints(id);
    else if (v.delete !== undefined) await ws.deleteCheckpoint(id, v.delete);
    else if (v.diff !== undefined) answer = await ws.diff(id, v.diff, v.to ?? "current");
    else answer = await ws.checkpoint(id, v.label === undefined ? {} : { label: v.label });
    if (answer !== undefined) process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
    return 0;
  } catch (err) {
    const message =
      err instanceof AirlockApiError
        ? `${err.code} (HTTP ${err.status}): ${err.message}`
        : (err as Error).message;
    process.stderr.write(`airlock ${command}: ${message}\n`);
    return 2;
  }
}
