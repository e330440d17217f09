// The few lines of /bin/sh that run inside every sandbox as the child of
// Docker's init. The container starts with no job in it: everything about the
// job arrives on stdin, so that a container can be started ahead of demand
// (warm pool) and still get exactly its job's argv, env and workdir:
//   <nonce> tar|list\n<shell lines: cd (to a workdir but /workspace), exports, set -- argv>\n<nonce>\n<the job's stdin…>
// The nonce is in no file, argv or environment the user's code can read: the
// job's lines run in a subshell that execs the argv, so no part of the job
// runs in the launcher's shell (an argv of `eval …` or `. file` is looked up
// as a program, as execve would, and is not found). After the user's argv
// exits, the launcher kills whatever the job left running (so /workspace is
// still), prints a trailer on stdout:
//   \x1e<nonce> <exit code> <cpu> <memory peak> <oom kills>\n
// read from the container's own cgroup (the CPU time counted from just before
// the job: a container's start-up, ~85 ms of runc's, is not the job's), and
// stops itself. The container stays up, idle, so the gateway can copy
// /workspace out of a running container (much faster than out of a stopped
// one) and remove it off the request path.
// The nonce makes the trailer unforgeable by the job.
//
// A compiled language's job lines run its compile argv first (stdin from
// /dev/null), then print `\x1e<nonce> compile <exit code>\n` on stdout and
// `\x1e<nonce>\n` on stderr (the compiler is a program of the image, never
// the job's code, and the nonce is in no file or argv it sees). A failed
// compile ends the job with its exit code. Otherwise the lines wait for one
// line on stdin, which the gateway sends once it has set the run's limits,
// and the job's own stdin follows that line (compileLines).
//
// A one-shot job's first line is `<nonce> tar`: after the trailer, the
// launcher sends /workspace as a tar, then `\x1e<nonce>\n`. A workspace job's
// first line is `<nonce> list` instead: the launcher prints
// a stat listing of /workspace (see executor/listing.ts) and `\x1e<nonce> <find's
// status>\n`, and only then reads the rest of the job, which the gateway sends
// once it has the listing (and has put the job's files in). The listing is
// made before any code of the job exists, so the gateway can trust it. After
// the trailer such a launcher prints the listing again, `\x1e<nonce> <status>\n`,
// a tar of the entries whose status changed since just before the first
// listing, and `\x1e<nonce>\n`. The changed set is only a hint: the gateway
// compares the two listings itself and asks the engine for whatever it misses.
import { WORKSPACE_DIR } from "../core/paths.ts";

export const LAUNCHER_SCRIPT = [
  "IFS=' ' read -r n __airlock_w || exit 125",
  // Absolute paths and an empty environment: nothing of the job's can stand in for find.
  // Names from `find .` all start with "./", so tar never takes one for an option.
  "__airlock_list() { cd /workspace && /usr/bin/env -i LC_ALL=C /usr/bin/find . -mindepth 1 \\( -type f -o -type l \\) -printf '%y %i %s %T@ %C@ %m %P\\0' \"$@\" 2>/dev/null; }",
  // The time goes back 2 s: file times come from the kernel's coarse clock, a tick behind `date`.
  'if [ "$__airlock_w" = list ]; then __airlock_t=$(($(/usr/bin/date +%s) - 2)); __airlock_list; printf \'\\036%s %s\\n\' "$n" "$?"; fi',
  "s=",
  'while IFS= read -r l; do [ "$l" = "$n" ] && break; s="$s$l',
  '"; done',
  "g=/sys/fs/cgroup",
  // The cgroup's CPU time since the container started, in $cu units (u=- where none shows).
  "__airlock_cpu() { u=-; if [ -r $g/cpuacct/cpuacct.usage ]; then read -r u < $g/cpuacct/cpuacct.usage; cu=ns",
  // Each loop stops at its line: dash's read takes a system call per byte.
  'elif [ -r $g/cpu.stat ]; then while read -r k v; do [ "$k" = usage_usec ] && { u=$v; break; }; done < $g/cpu.stat; cu=us; fi; }',
  "__airlock_cpu; u0=$u",
  // None of the job's code runs in this shell, so none can read or change what it keeps
  // (the nonce, u0, g): the subshell runs only our lines, then execs the argv with the exported environment.
  // It starts in /workspace without OLDPWD, the usual workdir: a job's lines cd only to another.
  '(cd /workspace || exit 125; unset OLDPWD; eval "$s"; exec "$@")',
  "c=$?",
  "kill -9 -1 2>/dev/null",
  '__airlock_cpu; if [ "$u" != - ] && [ "$u0" != - ]; then u=$cu$((u - u0)); else u=-; fi',
  "m=-; o=-",
  "if [ -r $g/memory/memory.max_usage_in_bytes ]; then read -r m < $g/memory/memory.max_usage_in_bytes",
  "elif [ -r $g/memory.peak ]; then read -r m < $g/memory.peak; fi",
  "for f in $g/memory/memory.oom_control $g/memory.events; do",
  '  [ -r $f ] && while read -r k v; do [ "$k" = oom_kill ] && { o=$v; break; }; done < $f',
  "done",
  // One-shot jobs send /workspace back on stdout after the trailer, then the
  // nonce again: far cheaper than the engine's archive API (~70 ms a call
  // here). An empty /workspace (most one-shot jobs) is found by the shell's
  // own globs and sent as no bytes at all, which reads as an empty archive:
  // no tar process to start, and the trailer and the closing nonce go out in
  // one write, so one trip through the engine's pipes instead of two.
  // Two globs, so two reads of the directory (.* brings . and .., skipped by name).
  '__airlock_e=; if [ "$__airlock_w" = tar ]; then __airlock_e=1; for __airlock_f in /workspace/* /workspace/.*; do',
  "  case $__airlock_f in /workspace/. | /workspace/..) continue ;; esac",
  '  if [ -e "$__airlock_f" ] || [ -L "$__airlock_f" ]; then __airlock_e=; break; fi; done; fi',
  "printf '\\036%s\\n' \"$n\" >&2",
  'if [ -n "$__airlock_e" ]; then printf \'\\036%s %s %s %s %s\\n\\036%s\\n\' "$n" "$c" "$u" "$m" "$o" "$n"',
  'else printf \'\\036%s %s %s %s %s\\n\' "$n" "$c" "$u" "$m" "$o"',
  '  if [ "$__airlock_w" = tar ]; then /bin/tar -C /workspace --hard-dereference -cf - . 2>/dev/null; printf \'\\036%s\\n\' "$n"; fi; fi',
  // After the run, one pass lists /workspace and notes (in a fresh file: the job is gone) what changed.
  'if [ "$__airlock_w" = list ]; then __airlock_c=$(/usr/bin/env -i /usr/bin/mktemp -p /tmp) || __airlock_c=/dev/null',
  '  __airlock_list -newerct "@$__airlock_t" -fprint0 "$__airlock_c"; printf \'\\036%s %s\\n\' "$n" "$?"',
  '  /usr/bin/env -i LC_ALL=C /bin/tar --null --no-recursion --hard-dereference -T "$__airlock_c" -cf - 2>/dev/null',
  "  printf '\\036%s\\n' \"$n\"; fi",
  // Stopped, not exited: the container stays up until the gateway removes it.
  "kill -STOP $$",
  'exit "$c"',
].join("\n");

/** Single-quoted for sh: the only character to escape inside '…' is ' itself. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, "'\\''")}'`;
}

/**
 * One word for sh: as it is when it holds only characters that sh gives no
 * meaning to (no quote, space, $, glob, ~, #, ;, &, |, <, >, (, ), \, `),
 * else single-quoted. The launcher reads its lines a byte per system call, so
 * the two quotes around `echo` or `-c` are two calls saved.
 */
export function shellWord(value: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(value) ? value : shellQuote(value);
}

export interface JobSpec {
  /** Absolute directory to run in. */
  cwd: string;
  /** Variables to add to the container's environment (names already validated). */
  env: Readonly<Record<string, string>>;
  /**
   * The environment the container was created with (its profile's): a
   * variable it already holds with the same value is not sent again. The
   * launcher reads its lines a byte at a time (as `read` must, from a pipe),
   * each byte a system call, and under gVisor's ptrace platform a costly one.
   */
  inherited?: Readonly<Record<string, string>> | undefined;
  argv: readonly string[];
  /** A compiled language's compile argv, run first (see the file's comment). */
  compile?: readonly string[] | undefined;
}

/** The line the gateway sends after a compile, before the job's stdin: "run". */
export const RUN_LINE = "run\n";

/** The job lines of a compile stage: compile, report, stop on failure, wait for RUN_LINE. */
function compileLines(argv: readonly string[]): string[] {
  return [
    `set -- ${argv.map(shellWord).join(" ")}`,
    '"$@" </dev/null; __airlock_k=$?',
    'printf \'\\036%s compile %s\\n\' "$n" "$__airlock_k"; printf \'\\036%s\\n\' "$n" >&2',
    '[ "$__airlock_k" = 0 ] || exit "$__airlock_k"',
    "IFS= read -r __airlock_k || exit 125; unset __airlock_k",
  ];
}

/**
 * What the launcher reads from stdin before the job's own input. Quoted values
 * may span lines (a `sh -c` script often does); the launcher reads until the
 * nonce line, which no quoted value can contain by chance.
 */
export function jobLines(nonce: string, spec: JobSpec): string {
  const lines = [
    // The launcher's subshell starts in /workspace. cd sets OLDPWD; the job's
    // environment holds only what the profile and the request set.
    ...(spec.cwd === WORKSPACE_DIR ? [] : [`cd ${shellWord(spec.cwd)} || exit 125; unset OLDPWD`]),
    ...Object.entries(spec.env)
      .filter(([k, v]) => spec.inherited?.[k] !== v)
      .map(([k, v]) => `export ${k}=${shellWord(v)}`),
    ...(spec.compile === undefined ? [] : compileLines(spec.compile)),
    `set -- ${spec.argv.map(shellWord).join(" ")}`,
  ];
  return `${lines.join("\n")}\n${nonce}\n`;
}

/**
 * The first line on stdin: the nonce, and what the launcher sends after the
 * trailer: `tar`, /workspace as a tar (one-shot jobs, whose workspace is small
 * and their own); `list`, a listing before the job and one after it with a
 * tar of what changed (workspace jobs).
 */
export function jobHeader(nonce: string, mode: "tar" | "list"): string {
  return `${nonce} ${mode}\n`;
}

/** The first line and the job together, for a one-shot job. */
export function jobPreamble(nonce: string, spec: JobSpec): string {
  return jobHeader(nonce, "tar") + jobLines(nonce, spec);
}

export const TRAILER_START = 0x1e;

/** Parses what follows `\x1e<nonce>` after a listing: find's exit status; undefined if malformed. */
export function parseListingEnd(rest: string): number | undefined {
  const match = /^ (\d+)\n/.exec(rest);
  return match === null ? undefined : Number(match[1]);
}

export interface Trailer {
  exitCode: number;
  cpuMs: number | null;
  memoryPeakBytes: number | null;
  /** The cgroup's OOM kill count; null where the runtime shows no cgroup (gVisor). */
  oomKills: number | null;
}

/** Parses what follows `\x1e<nonce>` at the end of a compile stage: its exit code; undefined if malformed. */
export function parseCompileEnd(rest: string): number | undefined {
  const match = /^ compile (\d+)\n/.exec(rest);
  return match === null ? undefined : Number(match[1]);
}

/** Parses what follows `\x1e<nonce> ` on stdout; undefined if it is not a whole trailer. */
export function parseTrailer(rest: string): Trailer | undefined {
  const match = /^ (\d+) (ns\d+|us\d+|-) (\d+|-) (\d+|-)\n/.exec(rest);
  if (match === null) return undefined;
  const [, code, cpu, mem, oom] = match as unknown as [string, string, string, string, string];
  let cpuMs: number | null = null;
  if (cpu.startsWith("ns")) cpuMs = Math.round(Number(cpu.slice(2)) / 1e6);
  else if (cpu.startsWith("us")) cpuMs = Math.round(Number(cpu.slice(2)) / 1e3);
  return {
    exitCode: Number(code),
    cpuMs,
    memoryPeakBytes: mem === "-" ? null : Number(mem),
    oomKills: oom === "-" ? null : Number(oom),
  };
}
