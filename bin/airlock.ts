#!/usr/bin/env node
// The `airlock` command: serve, exec, logs, mcp, images build, doctor. Node runs this
// .ts file directly, which it refuses to do under node_modules: use it from the
// repository (npx airlock, npm link), not from an installed package.
import { spawn } from "node:child_process";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "..");
const USAGE = `usage: airlock <command>
  serve               run the gateway (as npm start; configured by AIRLOCK_* variables)
  exec [options] CMD  run one operation against a gateway, streaming its output (airlock exec --help)
  logs [-f] ID        an execution's output, replayed (and followed with -f) (airlock logs --help)
  checkpoint WS       take (or --list, --delete, --diff) a workspace's checkpoints (airlock checkpoint --help)
  restore WS CP       put a workspace back as a checkpoint has it
  fork WS             new workspaces with a workspace's (or a checkpoint's) files (--count N, --checkpoint CP)
  mcp [--url --key]   an MCP server on stdio that forwards to a gateway (for desktop agent hosts)
  images build [--force] [name…]   build the sandbox images
  doctor              check the hardening airlock promises, as a table`;

/** Runs one of the repository's own scripts in a child Node, passing its exit code on. */
function runScript(script: string, args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, script), ...args], { stdio: "inherit" });
    child.on("exit", (code, signal) => resolve(code ?? (signal === null ? 1 : 128 + 15)));
  });
}

const [command, ...rest] = process.argv.slice(2);
switch (command) {
  case "serve":
    // main.ts starts the gateway when imported and owns the process from then on.
    await import("../main.ts");
    break;
  case "exec": {
    const { runExec, USAGE_EXEC } = await import("../cli/exec.ts");
    if (rest.includes("--help") || rest.includes("-h")) {
      process.stdout.write(`${USAGE_EXEC}\n`);
      break;
    }
    process.exitCode = await runExec(rest, process.env);
    break;
  }
  case "logs": {
    const { runLogs, USAGE_LOGS } = await import("../cli/logs.ts");
    if (rest.includes("--help") || rest.includes("-h")) {
      process.stdout.write(`${USAGE_LOGS}\n`);
      break;
    }
    process.exitCode = await runLogs(rest, process.env);
    break;
  }
  case "checkpoint":
  case "restore":
  case "fork": {
    const cli = await import("../cli/checkpoint.ts");
    if (rest.includes("--help") || rest.includes("-h")) {
      const usage = {
        checkpoint: cli.USAGE_CHECKPOINT,
        restore: cli.USAGE_RESTORE,
        fork: cli.USAGE_FORK,
      };
      process.stdout.write(`${usage[command]}\n`);
      break;
    }
    process.exitCode = await cli.runCheckpointCommand(command, rest, process.env);
    break;
  }
  case "mcp": {
    const { runMcp } = await import("../cli/mcp.ts");
    await runMcp(rest, process.env);
    break;
  }
  case "images":
    if (rest[0] !== "build") {
      process.stderr.write(`${USAGE}\n`);
      process.exitCode = 2;
      break;
    }
    process.exitCode = await runScript("images/build.ts", rest.slice(1));
    break;
  case "doctor":
    process.exitCode = await runScript("doctor.ts", rest);
    break;
  case undefined:
  case "help":
  case "--help":
  case "-h":
    process.stdout.write(`${USAGE}\n`);
    break;
  default:
    process.stderr.write(`airlock: unknown command ${command}\n${USAGE}\n`);
    process.exitCode = 2;
}
