// The few lines of /bin/sh that run inside every sandbox as the child of
// Docker's init. They read a per-job nonce from the first line of stdin (so it
// is in no file, argv or environment the user's code can read), run the user's
// argv with the rest of stdin, then print a trailer on stdout:
//   \x1e<nonce> <exit code> <cpu> <memory peak>\n
// read from the container's own cgroup while it still exists. The gateway cuts
// stdout at the trailer. The exit code itself comes from the engine, not from
// here: the trailer only carries usage, which is the part Docker cannot give
// after the container has stopped.
export const LAUNCHER_SCRIPT = [
  "IFS= read -r n",
  '"$@"',
  "c=$?",
  "u=-; m=-",
  "g=/sys/fs/cgroup",
  'if [ -r $g/cpuacct/cpuacct.usage ]; then read -r u < $g/cpuacct/cpuacct.usage; u="ns$u"',
  'elif [ -r $g/cpu.stat ]; then while read -r k v; do [ "$k" = usage_usec ] && u="us$v"; done < $g/cpu.stat; fi',
  "if [ -r $g/memory/memory.max_usage_in_bytes ]; then read -r m < $g/memory/memory.max_usage_in_bytes",
  "elif [ -r $g/memory.peak ]; then read -r m < $g/memory.peak; fi",
  'printf \'\\036%s %s %s %s\\n\' "$n" "$c" "$u" "$m"',
  'exit "$c"',
].join("\n");

export const TRAILER_START = 0x1e;

export interface Trailer {
  exitCode: number;
  cpuMs: number | null;
  memoryPeakBytes: number | null;
}

/** Parses what follows `\x1e<nonce> ` on stdout; undefined if it is not a whole trailer. */
export function parseTrailer(rest: string): Trailer | undefined {
  const match = /^ (\d+) (ns\d+|us\d+|-) (\d+|-)\n/.exec(rest);
  if (match === null) return undefined;
  const [, code, cpu, mem] = match as unknown as [string, string, string, string];
  let cpuMs: number | null = null;
  if (cpu.startsWith("ns")) cpuMs = Math.round(Number(cpu.slice(2)) / 1e6);
  else if (cpu.startsWith("us")) cpuMs = Math.round(Number(cpu.slice(2)) / 1e3);
  return {
    exitCode: Number(code),
    cpuMs,
    memoryPeakBytes: mem === "-" ? null : Number(mem),
  };
}
