// `airlock logs ID`: an execution's output, as kept by the gateway (stdout and
// stderr to this terminal's), replayed from the start; with -f, followed until
// the job ends, with this process's exit code the job's, as `airlock exec`
// would have exited. For a job started with `airlock exec --detach`, or one
// whose stream was lost.
import { parseArgs } from "node:util";
import { AirlockApiError, createClient } from "../client/index.ts";
import { finish } from "./exec.ts";

export const USAGE_LOGS = `usage: airlock logs [options] <execution id>
  --url URL       the gateway (default: $AIRLOCK_URL or http://127.0.0.1:8080)
  --key KEY       the API key (default: $AIRLOCK_KEY)
  -f, --follow    follow the output until the job ends, then exit with its exit code
exit code: with -f, as airlock exec's; without, 0 once the output kept so far is printed
(a job that has ended: as with -f); cancelled, lost, or airlock's own failure: 2`;

export async function runLogs(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
    if (parsed.positionals.length !== 1) throw new Error("give one execution id");
  } catch (err) {
    process.stderr.write(`airlock logs: ${(err as Error).message}\n${USAGE_LOGS}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const key = values.key ?? env["AIRLOCK_KEY"];
  const client = createClient({
    baseUrl: values.url ?? env["AIRLOCK_URL"] ?? "http://127.0.0.1:8080",
    ...(key === undefined ? {} : { apiKey: key }),
  });
  const controller = new AbortController();
  // Ctrl-C stops reading; the job is not touched.
  process.once("SIGINT", () => controller.abort());
  try {
    const events = client.executionEvents(positionals[0] as string, {
      follow: values.follow === true,
      signal: controller.signal,
    });
    for await (const e of events) {
      switch (e.type) {
        case "stdout":
        case "stderr":
          (e.type === "stdout" ? process.stdout : process.stderr).write(e.data);
          break;
        case "dropped":
          process.stderr.write(`airlock: ${e.message}\n`);
          break;
        case "result":
          return finish(e.result);
        case "end": {
          const why = e.error === undefined ? "" : `: ${e.error.message}`;
          process.stderr.write(`airlock: execution ${e.id} ${e.status}${why}\n`);
          return 2;
        }
      }
    }
    return 0;
  } catch (err) {
    if (controller.signal.aborted) return 130;
    if (err instanceof AirlockApiError) {
      process.stderr.write(`airlock logs: ${err.code} (HTTP ${err.status}): ${err.message}\n`);
    } else {
      process.stderr.write(`airlock logs: ${(err as Error).message}\n`);
    }
    return 2;
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: "string" },
      key: { type: "string" },
      follow: { type: "boolean", short: "f" },
    },
  });
}
