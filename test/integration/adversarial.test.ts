// The adversarial suite: each test is an attack that must fail inside the
// sandbox while the gateway, the host and other jobs carry on (the next request
// works). Attacks that concern the kernel boundary run under both runtimes:
// runc (python, shell) and gVisor (python-gvisor, shell-gvisor). A table of
// attack, expected and observed is printed at the end.
import { createSocket } from "node:dgram";
import { request } from "node:http";
import { createServer, type Server } from "node:net";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecResult } from "../../core/schemas.ts";
import { POLICIES_DIR } from "../../policies/load.ts";
import { AttackLog } from "../support/attack-log.ts";
import { startGateway, type TestGateway } from "../support/gateway.ts";
import { type MainProcess, spawnMain } from "../support/main-process.ts";

const log = new AttackLog();
let gw: TestGateway;
const HOST_SECRET = `host-secret-${Math.random().toString(36).slice(2)}`;

beforeAll(async () => {
  process.env["AIRLOCK_ADVERSARIAL_SECRET"] = HOST_SECRET;
  gw = await startGateway({ concurrency: 4, profilesDir: join(POLICIES_DIR, "gvisor") });
});
afterAll(async () => {
  for (const main of children) main.child.kill("SIGKILL");
  await gw.close();
  expect(await gw.leftovers()).toEqual({ containers: 0, volumes: 0 });
  console.log(`\nAdversarial suite\n${log.table()}\n`);
});

async function exec(body: Record<string, unknown>): Promise<ExecResult> {
  const res = await gw.post("/v1/exec", body);
  const json = (await res.json()) as ExecResult;
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

/** The gateway still answers and a fresh sandbox still works. */
async function stillWorks(profile: string): Promise<void> {
  const r = await exec({ profile, command: ["echo", "alive"] });
  expect(r).toMatchObject({ status: "ok", stdout: "alive\n" });
}

const RUNTIMES = [
  { runtime: "runc", python: "python", shell: "shell" },
  { runtime: "runsc", python: "python-gvisor", shell: "shell-gvisor" },
] as const;

describe.each(RUNTIMES)("resources under $runtime", ({ runtime, python, shell }) => {
  it("fork bomb", async () => {
    const r = await exec({
      profile: shell,
      command: "bomb() { bomb | bomb & }; bomb; sleep 30",
      limits: { timeoutMs: 3000 },
    });
    log.record(
      `fork bomb (${runtime})`,
      "contained, host unaffected",
      `${r.status} (exit ${r.exitCode}) in ${r.durationMs} ms`,
    );
    // Either the limit starves the script's own last fork (error) or the script
    // sleeps on to the deadline (timeout); both end it in time. Under runc the
    // shell says why; under gVisor the sandbox's own threads share the pids
    // limit, and the shell may die without a word.
    expect(["error", "timeout"]).toContain(r.status);
    if (r.status === "error" && runtime === "runc") {
      expect(r.stderr).toMatch(/fork|Resource temporarily unavailable/i);
    }
    expect(r.durationMs).toBeLessThan(5000);
    await stillWorks(shell);
  });

  it("memory bomb", async () => {
    const r = await exec({
      profile: python,
      code: "blocks = []\nwhile True:\n    blocks.append(bytearray(8 * 1024 * 1024))",
      limits: { memoryMb: 128, timeoutMs: 20_000 },
    });
    log.record(
      `memory bomb (${runtime})`,
      runtime === "runc" ? "oom" : "killed (oom when the host sees it)",
      `${r.status}, exit ${r.exitCode}, signal ${r.signal}`,
    );
    if (runtime === "runc") expect(r.status).toBe("oom");
    else {
      // gVisor may kill the process inside its own kernel, where neither the
      // host's OOM flag nor a cgroup counter can see it: then it is a plain SIGKILL.
      expect(["oom", "error"]).toContain(r.status);
      expect(r.signal).toBe("SIGKILL");
    }
    await stillWorks(python);
  });

  it("CPU spin past the time limit", async () => {
    const t0 = Date.now();
    const r = await exec({
      profile: python,
      code: "while True:\n    pass",
      limits: { timeoutMs: 1500 },
    });
    log.record(
      `CPU spin (${runtime})`,
      "timeout at 1.5 s",
      `${r.status} after ${Date.now() - t0} ms`,
    );
    expect(r.status).toBe("timeout");
    expect(Date.now() - t0).toBeLessThan(8000);
  });

  it("sleep past the wall limit", async () => {
    const r = await exec({ profile: shell, command: "sleep 600", limits: { timeoutMs: 1000 } });
    log.record(`sleep 600 (${runtime})`, "timeout at 1 s", `${r.status} after ${r.durationMs} ms`);
    expect(r.status).toBe("timeout");
  });

  it("1 GB output flood", async () => {
    const r = await exec({
      profile: shell,
      command: "head -c 1000000000 /dev/zero",
      limits: { outputBytes: 1024 * 1024, timeoutMs: 30_000 },
    });
    log.record(
      `1 GB stdout (${runtime})`,
      "output_limit, 1 MiB kept",
      `${r.status}, kept ${r.stdout.length} bytes`,
    );
    expect(r.status).toBe("output_limit");
    expect(r.stdout.length).toBe(1024 * 1024);
  });

  it("filling /workspace, /tmp and /dev/shm", async () => {
    const r = await exec({
      profile: shell,
      command: [
        "head -c 300000000 /dev/zero > /workspace/big 2>/dev/null; echo workspace $(wc -c < /workspace/big)",
        "head -c 100000000 /dev/zero > /tmp/big 2>/dev/null; echo tmp $(wc -c < /tmp/big)",
        "head -c 50000000 /dev/zero > /dev/shm/big 2>/dev/null; echo shm $(wc -c < /dev/shm/big)",
      ].join("; "),
      limits: { timeoutMs: 30_000 },
    });
    const sizes = Object.fromEntries(
      r.stdout
        .trim()
        .split("\n")
        .map((l) => l.split(" ") as [string, string]),
    );
    log.record(
      `fill disks (${runtime})`,
      "≤256 MiB file, ≤64 MiB /tmp, ≤16 MiB shm",
      JSON.stringify(sizes),
    );
    expect(Number(sizes["workspace"])).toBeLessThanOrEqual(256 * 1024 * 1024);
    expect(Number(sizes["tmp"])).toBeLessThanOrEqual(64 * 1024 * 1024);
    expect(Number(sizes["shm"])).toBeLessThanOrEqual(16 * 1024 * 1024);
    await stillWorks(shell);
  });
});

/** Python that calls a syscall by number through ctypes and prints the errno (0 = it ran). */
function syscallProbe(calls: Record<string, number>): string {
  return [
    "import ctypes, json, os",
    "libc = ctypes.CDLL(None, use_errno=True)",
    "libc.syscall.restype = ctypes.c_long",
    `calls = ${JSON.stringify(calls)}`,
    "out = {}",
    "for name, nr in calls.items():",
    "    ctypes.set_errno(0)",
    "    rc = libc.syscall(nr, 0, 0, 0, 0, 0, 0)",
    "    out[name] = ctypes.get_errno() if rc == -1 else 'ran'",
    "print(json.dumps(out))",
  ].join("\n");
}

// x86_64 numbers of the syscalls the seccomp profile must refuse.
const DENIED = {
  ptrace: 101,
  process_vm_readv: 310,
  process_vm_writev: 311,
  keyctl: 250,
  add_key: 248,
  request_key: 249,
  bpf: 321,
  perf_event_open: 298,
  userfaultfd: 323,
  io_uring_setup: 425,
  io_uring_enter: 426,
  io_uring_register: 427,
  unshare: 272,
  setns: 308,
  mount: 165,
  umount2: 166,
  pivot_root: 155,
  chroot: 161,
  kexec_load: 246,
  kexec_file_load: 320,
  open_by_handle_at: 304,
};
const EPERM = 1;

describe.each(RUNTIMES)("ordinary workloads still run under $runtime", ({ runtime, python }) => {
  it("Python threads, asyncio, subprocess and multiprocessing", async () => {
    const code = [
      "import asyncio, json, multiprocessing, subprocess, threading",
      "out = {}",
      "box = []",
      "t = threading.Thread(target=lambda: box.append('thread')); t.start(); t.join()",
      "out['thread'] = box == ['thread']",
      "async def main():",
      "    await asyncio.sleep(0.01)",
      "    p = await asyncio.create_subprocess_exec('echo', 'async', stdout=asyncio.subprocess.PIPE)",
      "    return (await p.communicate())[0].decode().strip()",
      "out['asyncio'] = asyncio.run(main())",
      "out['subprocess'] = subprocess.run(['sh', '-c', 'echo sub | tr a-z A-Z'], capture_output=True, text=True).stdout.strip()",
      "if __name__ == '__main__':",
      "    with multiprocessing.Pool(2) as pool: out['pool'] = pool.map(abs, [-1, -2])",
      "    print(json.dumps(out))",
    ].join("\n");
    const r = await exec({ profile: python, code });
    log.record(
      `workloads (${runtime})`,
      "all run",
      r.status === "ok" ? r.stdout.trim() : `${r.status}: ${r.stderr.slice(-80)}`,
    );
    expect(r.status).toBe("ok");
    expect(JSON.parse(r.stdout)).toEqual({
      thread: true,
      asyncio: "async",
      subprocess: "SUB",
      pool: [1, 2],
    });
  });
});

describe.each(RUNTIMES)("escape and privilege under $runtime", ({ runtime, python, shell }) => {
  it("every denied syscall returns EPERM", async () => {
    const r = await exec({ profile: python, code: syscallProbe(DENIED) });
    const out = JSON.parse(r.stdout) as Record<string, number | string>;
    const wrong = Object.entries(out).filter(([, errno]) => errno !== EPERM);
    log.record(
      `denied syscalls via ctypes (${runtime})`,
      `EPERM for all ${Object.keys(DENIED).length}`,
      wrong.length === 0 ? "EPERM for all" : JSON.stringify(wrong),
    );
    expect(wrong).toEqual([]);
  });

  it("clone3 answers ENOSYS, so threads fall back to clone, whose flags the filter sees", async () => {
    const code = [
      "import ctypes",
      "libc = ctypes.CDLL(None, use_errno=True)",
      "print(libc.syscall(435, 0, 0), ctypes.get_errno())  # clone3(NULL, 0)",
    ].join("\n");
    const r = await exec({ profile: python, code });
    log.record(`clone3 (${runtime})`, "-1 ENOSYS (38)", r.stdout.trim());
    expect(r.stdout).toBe("-1 38\n");
  });

  it("AF_VSOCK, AF_ALG, AF_PACKET and raw sockets are refused", async () => {
    const code = [
      "import socket, json",
      "out = {}",
      "for name, args in {'AF_VSOCK': (40, 1, 0), 'AF_ALG': (38, 5, 0), 'AF_PACKET': (17, 3, 0), 'SOCK_RAW': (2, 3, 1)}.items():",
      "    try:",
      "        socket.socket(*args); out[name] = 'opened'",
      "    except OSError as e: out[name] = e.errno",
      "print(json.dumps(out))",
    ].join("\n");
    const r = await exec({ profile: python, code });
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    log.record(`vsock/alg/packet/raw sockets (${runtime})`, "EPERM", JSON.stringify(out));
    expect(out).toEqual({ AF_VSOCK: EPERM, AF_ALG: EPERM, AF_PACKET: EPERM, SOCK_RAW: EPERM });
  });

  it("a 32-bit syscall (int 0x80) does not run", async () => {
    // mov eax, 20 (getpid in the i386 table); int 0x80; ret. The filter lists
    // only native architectures, so the kernel's seccomp check refuses the
    // i386 entry before getpid runs: the process gets an error or is killed.
    const code = [
      "import ctypes, mmap, os, sys",
      "buf = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)",
      "buf.write(b'\\xb8\\x14\\x00\\x00\\x00\\xcd\\x80\\xc3')",
      "addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))",
      "fn = ctypes.CFUNCTYPE(ctypes.c_int)(addr)",
      "sys.stdout.write('pid %d result %d\\n' % (os.getpid(), fn())); sys.stdout.flush()",
    ].join("\n");
    const r = await exec({ profile: python, code });
    const match = /pid (\d+) result (-?\d+)/.exec(r.stdout);
    const observed =
      match === null
        ? `process ended ${r.status}, exit ${r.exitCode}, signal ${r.signal}`
        : `returned ${match[2]} (pid ${match[1]})`;
    log.record(`32-bit syscall int 0x80 (${runtime})`, "refused", observed);
    if (match !== null) expect(match[2]).not.toBe(match[1]);
    else expect(r.exitCode).not.toBe(0);
  });

  it("no setuid binaries, and a setuid file of one's own does not elevate", async () => {
    const r = await exec({
      profile: shell,
      command:
        "find / -xdev -perm /6000 -type f 2>/dev/null | wc -l; cp /usr/bin/id ./myid && chmod u+s ./myid; ./myid -u",
    });
    log.record(
      `setuid binaries (${runtime})`,
      "none; own setuid file stays uid 1000",
      r.stdout.trim().split("\n").join(", "),
    );
    expect(r.stdout).toBe("0\n1000\n");
  });

  it("mount, unshare -r and ptrace of a sibling are refused", async () => {
    const code = [
      "import ctypes, json, os, subprocess, time",
      "libc = ctypes.CDLL(None, use_errno=True)",
      "out = {}",
      "out['mount'] = subprocess.run(['mount', '-t', 'tmpfs', 'none', '/mnt'], capture_output=True).returncode",
      "out['unshare -r'] = subprocess.run(['unshare', '-r', 'true'], capture_output=True).returncode",
      "child = os.fork()",
      "if child == 0:",
      "    time.sleep(5); os._exit(0)",
      "ctypes.set_errno(0)",
      "rc = libc.ptrace(16, child, 0, 0)  # PTRACE_ATTACH",
      "out['ptrace sibling'] = ctypes.get_errno() if rc == -1 else 'attached'",
      "os.kill(child, 9)",
      "print(json.dumps(out))",
    ].join("\n");
    const r = await exec({ profile: python, code });
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    log.record(`mount / unshare -r / ptrace (${runtime})`, "all refused", JSON.stringify(out));
    expect(out["mount"]).not.toBe(0);
    expect(out["unshare -r"]).not.toBe(0);
    expect(out["ptrace sibling"]).toBe(EPERM);
  });

  it("/proc/self/status shows seccomp filtering, no new privileges, no capabilities", async () => {
    // gVisor's /proc prints no NoNewPrivs line, so the flag is also asked of the kernel itself.
    const code = [
      "import ctypes, re",
      "libc = ctypes.CDLL(None, use_errno=True)",
      "status = open('/proc/self/status').read()",
      "print(''.join(l + '\\n' for l in status.splitlines() if re.match(r'(Seccomp|NoNewPrivs|CapEff|CapPrm|CapBnd):', l)), end='')",
      "print('prctl NoNewPrivs:', libc.prctl(39, 0, 0, 0, 0))  # PR_GET_NO_NEW_PRIVS",
    ].join("\n");
    const r = await exec({ profile: python, code });
    log.record(
      `/proc/self/status (${runtime})`,
      "Seccomp 2, NoNewPrivs 1, caps 0",
      r.stdout.replace(/\t/g, " ").replace(/\n/g, "; "),
    );
    expect(r.stdout).toMatch(/Seccomp:\s+2/);
    expect(r.stdout).toMatch(/prctl NoNewPrivs: 1/);
    if (runtime === "runc") expect(r.stdout).toMatch(/NoNewPrivs:\s+1/);
    for (const cap of ["CapEff", "CapPrm", "CapBnd"])
      expect(r.stdout).toMatch(new RegExp(`${cap}:\\s+0{16}`));
  });
});

describe.each(RUNTIMES)("what the sandbox can see under $runtime", ({ runtime, shell }) => {
  it("/proc/kcore, /proc/keys and /sys/firmware are masked", async () => {
    const r = await exec({
      profile: shell,
      command:
        "for f in /proc/kcore /proc/keys; do printf '%s %s\\n' $f $(head -c 64 $f 2>/dev/null | wc -c); done; printf '/sys/firmware %s\\n' $(ls -A /sys/firmware 2>/dev/null | wc -l)",
    });
    log.record(
      `masked paths (${runtime})`,
      "nothing readable",
      r.stdout.trim().split("\n").join(", "),
    );
    expect(r.stdout).toBe("/proc/kcore 0\n/proc/keys 0\n/sys/firmware 0\n");
  });

  it("the host's environment is not visible", async () => {
    const r = await exec({
      profile: shell,
      command: "env; cat /proc/1/environ 2>/dev/null | tr '\\0' '\\n'",
    });
    log.record(
      `host env (${runtime})`,
      "absent",
      r.stdout.includes(HOST_SECRET) ? "LEAKED" : "absent",
    );
    expect(r.stdout).not.toContain(HOST_SECRET);
    expect(r.stdout).not.toContain("AIRLOCK_ADVERSARIAL_SECRET");
  });
});

describe.each(RUNTIMES)("network none under $runtime", ({ runtime, python }) => {
  let tcp: Server;
  let tcpHits = 0;
  const udp = createSocket("udp4");
  let udpHits = 0;
  const ipv4: string[] = [];
  beforeAll(async () => {
    // Only this machine's own addresses (the host's interfaces, the docker0 bridge): never an outside one.
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) ipv4.push(a.address);
    }
    tcp = createServer((s) => {
      tcpHits++;
      s.destroy();
    });
    await new Promise<void>((resolve) => tcp.listen(0, "0.0.0.0", resolve));
    udp.on("message", () => udpHits++);
    await new Promise<void>((resolve) => udp.bind(0, "0.0.0.0", resolve));
  });
  afterAll(() => {
    tcp.close();
    udp.close();
  });

  it("DNS, TCP to the host and the bridge, IPv6 and raw sockets all fail", async () => {
    const tcpPort = (tcp.address() as { port: number }).port;
    const udpPort = udp.address().port;
    const code = [
      "import socket, json",
      `targets = ${JSON.stringify(ipv4)}`,
      "out = {}",
      "def attempt(label, fn):",
      "    try:",
      "        fn(); out[label] = 'ok'",
      "    except OSError as e: out[label] = 'errno %s' % e.errno",
      "for ip in targets:",
      `    attempt('tcp ' + ip, lambda: socket.create_connection((ip, ${tcpPort}), timeout=2))`,
      // A DNS query for a reserved name, sent to the test's own UDP listener: proves there is no route, sends nothing out.
      `    attempt('dns ' + ip, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x07invalid\\x00\\x00\\x01\\x00\\x01', (ip, ${udpPort})))`,
      `    attempt('ipv6 ::ffff:' + ip, lambda: socket.create_connection(('::ffff:' + ip, ${tcpPort}), timeout=2))`,
      "attempt('raw socket', lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))",
      "print(json.dumps(out))",
    ].join("\n");
    const r = await exec({ profile: python, code });
    const out = JSON.parse(r.stdout) as Record<string, string>;
    const reached = Object.entries(out).filter(([, v]) => v === "ok");
    await new Promise((resolve) => setTimeout(resolve, 200));
    log.record(
      `network none (${runtime})`,
      "every probe fails, listeners untouched",
      reached.length === 0 && tcpHits + udpHits === 0
        ? `all ${Object.keys(out).length} failed`
        : JSON.stringify(reached),
    );
    expect(ipv4.length).toBeGreaterThan(0);
    expect(reached).toEqual([]);
    expect(tcpHits).toBe(0);
    expect(udpHits).toBe(0);
  });
});

describe("files", () => {
  it.each([
    ["../escape.txt", "'..'"],
    ["/etc/passwd", "absolute"],
    ["a\u0000b", "NUL"],
    ["a\\b", "backslash"],
    [`${"n".repeat(300)}.txt`, "longer than 255"],
  ])("refuses the file name %j with 400 naming the field", async (path, reason) => {
    const res = await gw.post("/v1/exec", {
      profile: "shell",
      command: "true",
      files: [{ path, content: "x" }],
    });
    const body = (await res.json()) as { error: { message: string } };
    log.record(
      `file name ${JSON.stringify(path).slice(0, 24)}`,
      "400",
      `${res.status} ${body.error.message.slice(0, 50)}`,
    );
    expect(res.status).toBe(400);
    expect(body.error.message).toContain("files[0].path");
    expect(body.error.message).toContain(reason);
  });

  it("unicode names round-trip through files, the diff and returnFiles", async () => {
    const name = "données/ファイル 🚀.txt";
    const r = await exec({
      profile: "python",
      files: [{ path: name, content: "héllo" }],
      code: `p = ${JSON.stringify(name)}\nopen(p, 'a').write(' wörld')\nopen('новый.txt', 'w').write('ok')`,
      returnFiles: ["**/*.txt", "*.txt"],
    });
    log.record(
      "unicode names",
      "round-trip",
      `${r.diff.modified.map((e) => e.path).join(", ")} | ${r.diff.added.map((e) => e.path).join(", ")}`,
    );
    expect(r.diff.modified.map((e) => e.path)).toEqual([name]);
    expect(r.diff.added.map((e) => e.path)).toEqual(["новый.txt"]);
    expect(r.files.find((f) => f.path === name)?.content).toBe("héllo wörld");
  });

  it("links out of /workspace are never followed on the way back", async () => {
    const r = await exec({
      profile: "shell",
      command:
        "mkdir out; ln -s /etc/passwd out/passwd; ln -s /etc out/etc; ln /etc/passwd out/hard 2>/dev/null; true",
      returnFiles: ["out/**"],
    });
    const text = JSON.stringify(r);
    log.record(
      "symlink/hardlink escape on download",
      "links reported, never followed",
      r.diff.added.map((e) => `${e.path}:${e.type}`).join(", "),
    );
    expect(text).not.toContain("root:x:0:0");
    expect(r.diff.added.map((e) => [e.path, e.type])).toEqual([
      ["out/etc", "symlink"],
      ["out/passwd", "symlink"],
    ]);
    expect(r.files).toEqual([]);
  });
});

describe("service", () => {
  it.each([
    ["malformed JSON", "{ nope", "the body is not valid JSON"],
    [
      "wrong types",
      JSON.stringify({ profile: "shell", command: 1, limits: { timeoutMs: "soon" } }),
      "command",
    ],
    [
      "unknown fields",
      JSON.stringify({ profile: "shell", command: "true", privileged: true }),
      "privileged",
    ],
  ])("%s → 400", async (label, body, message) => {
    const res = await fetch(`${gw.url}/v1/exec`, {
      method: "POST",
      headers: { authorization: `Bearer ${gw.key}`, "content-type": "application/json" },
      body,
    });
    const json = (await res.json()) as { error: { code: string; message: string } };
    log.record(label, "400 invalid_request", `${res.status} ${json.error.code}`);
    expect(res.status).toBe(400);
    expect(json.error.message).toContain(message);
  });

  it("a 100 MB body is refused with 413 before it is read whole", async () => {
    const small = await startGateway({ maxBodyBytes: 1024 * 1024 });
    try {
      const url = new URL(small.url);
      const sent = { bytes: 0 };
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(
          {
            host: url.hostname,
            port: url.port,
            path: "/v1/exec",
            method: "POST",
            headers: {
              authorization: `Bearer ${small.key}`,
              "content-type": "application/json",
              "content-length": 100 * 1024 * 1024,
            },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
            req.destroy();
          },
        );
        req.on("error", (err) => (sent.bytes < 100 * 1024 * 1024 ? undefined : reject(err)));
        // Send 2 MB, then stop: a server that waited for the whole body would never answer.
        const chunk = Buffer.alloc(64 * 1024, 32);
        const pump = () => {
          while (sent.bytes < 2 * 1024 * 1024) {
            sent.bytes += chunk.length;
            if (!req.write(chunk)) {
              req.once("drain", pump);
              return;
            }
          }
        };
        pump();
      });
      log.record(
        "100 MB body",
        "413 before the body is read",
        `${status} after ${sent.bytes} bytes sent`,
      );
      expect(status).toBe(413);
      expect(sent.bytes).toBeLessThan(100 * 1024 * 1024);
    } finally {
      await small.close();
    }
  });

  it("500 concurrent requests past the queue: 200 or 429 with Retry-After, nothing lost", async () => {
    const busy = await startGateway({ concurrency: 2, maxQueue: 8 });
    try {
      const t0 = Date.now();
      const responses = await Promise.all(
        Array.from({ length: 500 }, async (_, i) => {
          const res = await busy.post("/v1/exec", {
            profile: "shell",
            command: ["echo", String(i)],
          });
          return {
            i,
            status: res.status,
            retry: res.headers.get("retry-after"),
            body: (await res.json()) as ExecResult,
          };
        }),
      );
      const ok = responses.filter((r) => r.status === 200);
      const refused = responses.filter((r) => r.status === 429);
      log.record(
        "500 concurrent requests",
        "200 or 429+Retry-After, all accepted complete",
        `${ok.length} ran, ${refused.length} refused, in ${Date.now() - t0} ms`,
      );
      expect(ok.length + refused.length).toBe(500);
      expect(ok.length).toBeGreaterThanOrEqual(10);
      for (const r of ok) expect(r.body).toMatchObject({ status: "ok", stdout: `${r.i}\n` });
      for (const r of refused) expect(Number(r.retry)).toBeGreaterThanOrEqual(1);
      expect(Date.now() - t0).toBeLessThan(60_000);
    } finally {
      await busy.close();
    }
    expect(await busy.leftovers()).toEqual({ containers: 0, volumes: 0 });
  });

  it("no key and a wrong key get 401", async () => {
    const none = await fetch(`${gw.url}/v1/exec`, { method: "POST", body: "{}" });
    const wrong = await fetch(`${gw.url}/v1/exec`, {
      method: "POST",
      body: "{}",
      headers: { authorization: "Bearer wrong-key-000000000000" },
    });
    log.record("no key / wrong key", "401 / 401", `${none.status} / ${wrong.status}`);
    expect(none.status).toBe(401);
    expect(wrong.status).toBe(401);
  });
});

// The gateway killed mid-run (SIGKILL: no cleanup at all) leaves its container
// and volume behind; restarted with the same instance id, it reaps them before
// it serves. Runs the real entry point, main.ts, as a child process.
const docker = new Dockerode();
const instanceId = `kill-test-${Math.random().toString(36).slice(2, 10)}`;
const key = "kill-test-key-0123456789";
const children: MainProcess[] = [];

/** main.ts with this test's own instance id and key, so a restart is the same gateway. */
async function startMain(): Promise<MainProcess> {
  const main = await spawnMain({
    env: {
      AIRLOCK_API_KEYS: `kill:${key}`,
      AIRLOCK_INSTANCE_ID: instanceId,
      AIRLOCK_LOG_LEVEL: "warn",
    },
  });
  children.push(main);
  return main;
}

async function ours() {
  const filter = { label: [`airlock=${instanceId}`] };
  const containers = await docker.listContainers({ all: true, filters: filter });
  const volumes = (await docker.listVolumes({ filters: filter })).Volumes ?? [];
  return {
    containers: containers.map((c) => ({
      id: c.Id,
      job: c.Labels["airlock.job"] ?? "",
      state: c.State,
    })),
    volumes: volumes.map((v) => v.Name),
  };
}

it("the gateway killed mid-run: its orphans are reaped when it restarts", async () => {
  const first = await startMain();
  void fetch(`http://127.0.0.1:${first.port}/v1/exec`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({
      profile: "shell",
      command: "sleep 600",
      limits: { timeoutMs: 300_000 },
    }),
  }).catch(() => undefined);
  // The job's container is the one not named for the warm pool ("park-…").
  const isJob = (c: { job: string }) => !c.job.startsWith("park-");
  const deadline = Date.now() + 15_000;
  while (!(await ours()).containers.some(isJob) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }

  first.child.kill("SIGKILL");
  await first.exited;
  const left = await ours();
  expect(left.containers.filter(isJob)).toHaveLength(1);
  expect(left.volumes.length).toBe(left.containers.length);

  const second = await startMain();
  const after = await ours();
  // Everything the killed gateway left (its job and its parked containers) is gone.
  const before = new Set([...left.containers.map((c) => c.id), ...left.volumes]);
  expect(
    [...after.containers.map((c) => c.id), ...after.volumes].filter((x) => before.has(x)),
  ).toEqual([]);
  second.child.kill("SIGTERM");
  const code = await second.exited;
  expect(code).toBe(0);
  // A clean shutdown leaves nothing, the warm pool included.
  expect(await ours()).toEqual({ containers: [], volumes: [] });
  log.record(
    "gateway SIGKILLed mid-run",
    "orphans reaped on restart",
    `${left.containers.length} containers and ${left.volumes.length} volumes left, all removed at start-up`,
  );
});

describe.each(RUNTIMES)("a workspace job's diff under $runtime", ({ runtime, shell }) => {
  it("cannot be made to lie by misleading the launcher or printing its markers", async () => {
    const created = await gw.post("/v1/workspaces", { profile: shell });
    const { id } = (await created.json()) as { id: string };
    const run = async (body: Record<string, unknown>) => {
      const res = await gw.post(`/v1/workspaces/${id}/exec`, body);
      expect(res.status).toBe(200);
      return (await res.json()) as ExecResult;
    };
    const paths = (entries: { path: string }[]) => entries.map((e) => e.path);
    try {
      const first = await run({ command: "echo 1 > a && echo 1 > b && echo k > k && ln -s a l" });
      expect(paths(first.diff.added)).toEqual(["a", "b", "k", "l"]);
      // Tries to move the launcher's reference time through env (the job's
      // exports stay in its subshell), hides a file from the launcher's tar,
      // and prints what looks like a listing and its end marker.
      const second = await run({
        command:
          "echo 2 > a && rm b && chmod 000 k && echo 3 > c && printf 'f 1 2 1.0 1.0 644 b\\0\\036feedface 0\\n'",
        env: { __airlock_t: "4000000000" },
      });
      const observed = `modified ${paths(second.diff.modified)} added ${paths(second.diff.added)} deleted ${paths(second.diff.deleted)}`;
      log.record(
        `misleading the launcher's diff hint (${runtime})`,
        "the diff is still right",
        observed,
      );
      expect(second.status).toBe("ok");
      expect(second.stdout).toBe("f 1 2 1.0 1.0 644 b\0\u001efeedface 0\n");
      expect(observed).toBe("modified a added c deleted b");
      // Files put in after the listing, into the running sandbox, are seen by the job and the diff.
      const third = await run({
        command: "cat up.txt a",
        files: [{ path: "up.txt", content: "u\n" }],
      });
      expect(third.stdout).toBe("u\n2\n");
      expect(paths(third.diff.added)).toEqual(["up.txt"]);
      expect(third.diff.modified).toEqual([]);
    } finally {
      await fetch(`${gw.url}/v1/workspaces/${id}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${gw.key}` },
      });
    }
  });
});
