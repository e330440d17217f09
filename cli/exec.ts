// `airlock exec`: one operation against a gateway, its output streamed to this
// terminal, and this process's exit code the sandbox's (see exitCodeOf).
import { readFile, stat } from "node:fs/promises";
import { basename } from "node:path";
import { parseArgs } from "node:util";
import {
  AirlockApiError,
  type AirlockClient,
  type ApprovalPending,
  ApprovalPendingError,
  createClient,
  type ExecInput,
  type ExecResult,
} from "../client/index.ts";

export const USAGE_EXEC = `usage: airlock exec [options] [--] <command…>
  one argument is run with /bin/sh -c; several are an argv
  --url URL          the gateway (default: $AIRLOCK_URL or http://127.0.0.1:8080)
  --key KEY          the API key (default: $AIRLOCK_KEY)
  --profile NAME     shell, python, node, … (default: shell; a workspace's own with --workspace)
  --code CODE        run code instead of a command (--language to pick one of the profile's)
  --language NAME
  --file LOCAL[:PATH]  upload a local file to /workspace/PATH (default: its base name); repeatable
  --workspace ID     run in an existing workspace
  --env NAME=VALUE   repeatable
  --stdin            send this process's standard input
  --timeout MS       limits.timeoutMs
  --no-wait          when the policy holds the job for an admin's approval, print the
                     approval id on stdout and exit 75 instead of waiting for the decision
  --detach           start the job and print its execution id on stdout (exit 0): it runs
                     with no client; read it with \`airlock logs ID -f\`
exit code: the sandbox's; timeout 124, oom 137, output_limit 125, workspace_full 123, compile_error 1;
killed by a signal N: 128+N; interrupted (Ctrl-C): 130; held for approval with --no-wait or --detach: 75;
airlock's own failure (usage, gateway error, approval denied or expired): 2`;

/** The documented exit codes of statuses that carry no exit code of their own. */
export const STATUS_EXIT = {
  timeout: 124,
  oom: 137,
  output_limit: 125,
  workspace_full: 123,
  compile_error: 1,
};
/** `--no-wait` and the job is held for approval: sysexits' EX_TEMPFAIL ("try again later"). */
export const APPROVAL_PENDING_EXIT = 75;
const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGABRT: 6,
  SIGKILL: 9,
  SIGSEGV: 11,
  SIGPIPE: 13,
  SIGTERM: 15,
};

export function exitCodeOf(r: ExecResult): number {
  if (r.status === "ok" || r.status === "error") {
    if (r.exitCode !== null) return r.exitCode;
    if (r.signal !== null) return 128 + (SIGNALS[r.signal] ?? 0);
    return 1;
  }
  return STATUS_EXIT[r.status];
}

class UsageError extends Error {}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

async function upload(spec: string) {
  const colon = spec.indexOf(":");
  const local = colon === -1 ? spec : spec.slice(0, colon);
  const remote = colon === -1 ? basename(spec) : spec.slice(colon + 1);
  const [content, info] = await Promise.all([readFile(local), stat(local)]);
  return {
    path: remote,
    content: content.toString("base64"),
    encoding: "base64" as const,
    mode: (info.mode & 0o777).toString(8).padStart(3, "0"),
  };
}

/** Runs the command; resolves to the exit code for this process. */
export async function runExec(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let values: ReturnType<typeof parse>["values"];
  let positionals: string[];
  try {
    ({ values, positionals } = parse(argv));
  } catch (err) {
    process.stderr.write(`airlock exec: ${(err as Error).message}\n${USAGE_EXEC}\n`);
    return 2;
  }
  const controller = new AbortController();
  const interrupted = controller.signal;
  let interruptedAt: number | undefined;
  try {
    const body = await buildBody(values, positionals);
    const client = createClient({
      baseUrl: values.url ?? env["AIRLOCK_URL"] ?? "http://127.0.0.1:8080",
      ...((values.key ?? env["AIRLOCK_KEY"])
        ? { apiKey: (values.key ?? env["AIRLOCK_KEY"]) as string }
        : {}),
    });
    const { profile: _, ...rest } = body;
    if (values.detach === true) return await detach(client, values.workspace, body);
    // A streamed job outlives its connection: Ctrl-C cancels it, then ends the request.
    let execution: string | undefined;
    process.once("SIGINT", () => {
      interruptedAt = Date.now();
      const cancelled = execution === undefined ? undefined : client.cancelExecution(execution);
      void Promise.resolve(cancelled)
        .catch(() => undefined)
        .finally(() => controller.abort());
    });
    const call = {
      signal: controller.signal,
      onExecution: (id: string) => {
        execution = id;
      },
    };
    const events =
      values.workspace === undefined
        ? client.execStream(body, call)
        : client.workspaces.execStream(values.workspace, rest, call);
    for await (const event of events) {
      if (event.type === "result") return finish(event.result);
      if (event.type === "approval") {
        return await awaitApproval(client, event.approval, values["no-wait"] === true, interrupted);
      }
      (event.type === "stdout" ? process.stdout : process.stderr).write(event.data);
    }
    return 2;
  } catch (err) {
    // As a shell reports Ctrl-C (the stream may end, cancelled, before the request is aborted).
    if (interrupted.aborted || interruptedAt !== undefined) return 130;
    if (err instanceof UsageError) {
      process.stderr.write(`airlock exec: ${err.message}\n${USAGE_EXEC}\n`);
    } else if (err instanceof AirlockApiError) {
      process.stderr.write(`airlock exec: ${err.code} (HTTP ${err.status}): ${err.message}\n`);
    } else {
      process.stderr.write(`airlock exec: ${(err as Error).message}\n`);
    }
    return 2;
  }
}

/** --detach: starts the job with no client and prints its execution id (or a held job's approval id, exit 75). */
async function detach(
  client: AirlockClient,
  workspace: string | undefined,
  body: ExecInput,
): Promise<number> {
  const { profile: _, ...rest } = body;
  try {
    const started =
      workspace === undefined
        ? await client.execAsync(body)
        : await client.workspaceExecAsync(workspace, rest);
    process.stdout.write(`${started.id}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof ApprovalPendingError)) throw err;
    process.stderr.write(
      `airlock: the policy holds this job for an admin's approval (${err.reasons.join(", ")}): ` +
        `approval ${err.approvalId}, pending until ${err.expiresAt}\n`,
    );
    process.stdout.write(`${err.approvalId}\n`);
    return APPROVAL_PENDING_EXIT;
  }
}

/** The exit code of a result, after a line on stderr for a status that has none of its own. */
export function finish(r: ExecResult): number {
  if (r.status !== "ok" && r.status !== "error") {
    process.stderr.write(`airlock: ${r.status}${r.signal === null ? "" : ` (${r.signal})`}\n`);
  }
  return exitCodeOf(r);
}

/**
 * A job held for an admin's approval: says so on stderr, then waits for the
 * decision and prints the job's output as it ran (not live: it ran detached),
 * or with --no-wait prints the id on stdout and exits APPROVAL_PENDING_EXIT.
 * Denied or expired: ApprovalEndedError, reported as airlock's own failure.
 */
async function awaitApproval(
  client: AirlockClient,
  held: ApprovalPending,
  noWait: boolean,
  signal: AbortSignal,
): Promise<number> {
  const id = held.approvalId;
  process.stderr.write(
    `airlock: the policy holds this job for an admin's approval (${held.reasons.join(", ")}): ` +
      `approval ${id}, pending until ${held.expiresAt}\n`,
  );
  if (noWait) {
    process.stdout.write(`${id}\n`);
    return APPROVAL_PENDING_EXIT;
  }
  process.stderr.write(
    "airlock: waiting for the decision (Ctrl-C stops waiting; the approval stays pending)\n",
  );
  signal.addEventListener(
    "abort",
    () => process.stderr.write(`airlock: stopped waiting; approval ${id} is still pending\n`),
    { once: true },
  );
  const r = await client.approvals.wait(id, { signal });
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  return finish(r);
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: "string" },
      key: { type: "string" },
      profile: { type: "string" },
      code: { type: "string" },
      language: { type: "string" },
      file: { type: "string", multiple: true },
      workspace: { type: "string" },
      env: { type: "string", multiple: true },
      stdin: { type: "boolean" },
      timeout: { type: "string" },
      "no-wait": { type: "boolean" },
      detach: { type: "boolean" },
    },
  });
}

async function buildBody(
  values: ReturnType<typeof parse>["values"],
  positionals: string[],
): Promise<ExecInput> {
  if (values.workspace !== undefined && values.profile !== undefined) {
    throw new UsageError("--profile does not go with --workspace: a workspace runs under its own");
  }
  if (values.code === undefined && positionals.length === 0) {
    throw new UsageError("give a command, or --code");
  }
  if (values.code !== undefined && positionals.length > 0) {
    throw new UsageError("give a command or --code, not both");
  }
  const env: Record<string, string> = {};
  for (const pair of values.env ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`--env ${pair}: expected NAME=VALUE`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeout !== undefined && !(Number.isInteger(timeout) && timeout > 0)) {
    throw new UsageError(`--timeout ${values.timeout}: expected milliseconds`);
  }
  const files = await Promise.all((values.file ?? []).map(upload));
  return {
    profile: values.profile ?? "shell",
    ...(values.code === undefined
      ? { command: positionals.length === 1 ? (positionals[0] as string) : positionals }
      : { code: values.code }),
    ...(values.language === undefined ? {} : { language: values.language }),
    ...(files.length === 0 ? {} : { files }),
    ...(Object.keys(env).length === 0 ? {} : { env }),
    ...(values.stdin === true ? { stdin: await readStdin() } : {}),
    ...(timeout === undefined ? {} : { limits: { timeoutMs: timeout } }),
  };
}
