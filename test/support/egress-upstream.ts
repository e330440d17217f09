// Local upstreams for the egress tests: one container the test makes, on a
// plain bridge network of its own, serving HTTP on 8080 and HTTPS on 8443
// (a test CA's certificate for secure.test), a tiny package index with a wheel
// it builds itself (/simple/), and /headers, which says whether the injected
// secret arrived without echoing it. Nothing here leaves the machine.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Dockerode from "dockerode";

const SERVER = String.raw`
import hashlib, http.server, io, json, os, ssl, threading, zipfile, base64
def wheel():
    files = {"egress_demo/__init__.py": b"VALUE = 'installed through the proxy'\n",
             "egress_demo-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: egress-demo\nVersion: 0.1\n",
             "egress_demo-0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(c).digest()).rstrip(b'=').decode()},{len(c)}\n" for n, c in files.items())
    files["egress_demo-0.1.dist-info/RECORD"] = (record + "egress_demo-0.1.dist-info/RECORD,,\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, c in files.items(): z.writestr(n, c)
    return buf.getvalue()
WHEEL = wheel(); NAME = "egress_demo-0.1-py3-none-any.whl"
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/simple/"):
            body = f'<a href="/wheels/{NAME}#sha256={hashlib.sha256(WHEEL).hexdigest()}">{NAME}</a>'.encode(); ctype = "text/html"
        elif self.path == "/wheels/" + NAME:
            body = WHEEL; ctype = "application/octet-stream"
        elif self.path == "/headers":
            body = json.dumps({"apiKeyOk": self.headers.get("X-Api-Key") == os.environ["SECRET"],
                               "apiKeySent": "X-Api-Key" in self.headers}).encode(); ctype = "application/json"
        else:
            body = b"hello from upstream\n"; ctype = "text/plain"
        self.send_response(200); self.send_header("Content-Type", ctype); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
plain = http.server.ThreadingHTTPServer(("0.0.0.0", 8080), H)
secure = http.server.ThreadingHTTPServer(("0.0.0.0", 8443), H)
open("/tmp/c.pem", "w").write(os.environ["CERT"]); open("/tmp/k.pem", "w").write(os.environ["KEY"])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain("/tmp/c.pem", "/tmp/k.pem")
secure.socket = ctx.wrap_socket(secure.socket, server_side=True)
threading.Thread(target=secure.serve_forever, daemon=True).start()
print("ready", flush=True)
plain.serve_forever()
`;

export interface Upstream {
  ip: string;
  /** PEM of the test CA that signed secure.test's certificate. */
  caPem: string;
  stop(): Promise<void>;
}

function testCa(): { ca: string; cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), "airlock-testca-"));
  const f = (n: string) => join(dir, n);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        ...ec,
        "-keyout",
        f("ca.key"),
        "-out",
        f("ca.pem"),
        "-days",
        "2",
        "-subj",
        "/CN=airlock test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
      ],
      { stdio: "pipe" },
    );
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        ...ec,
        "-keyout",
        f("k.pem"),
        "-out",
        f("c.pem"),
        "-days",
        "2",
        "-subj",
        "/CN=secure.test",
        "-CA",
        f("ca.pem"),
        "-CAkey",
        f("ca.key"),
        "-addext",
        "subjectAltName=DNS:secure.test",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
      ],
      { stdio: "pipe" },
    );
    return {
      ca: readFileSync(f("ca.pem"), "utf8"),
      cert: readFileSync(f("c.pem"), "utf8"),
      key: readFileSync(f("k.pem"), "utf8"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function startUpstream(secret: string, name: string): Promise<Upstream> {
  const docker = new Dockerode();
  const pki = testCa();
  const network = await docker.createNetwork({ Name: name, Labels: { airlock: "test" } });
  const container = await docker.createContainer({
    name,
    Image: "airlock/python:1",
    Entrypoint: [],
    Cmd: ["python3", "-c", SERVER],
    User: "65534:65534",
    Env: [`SECRET=${secret}`, `CERT=${pki.cert}`, `KEY=${pki.key}`],
    Labels: { airlock: "test" },
    HostConfig: { NetworkMode: name, AutoRemove: false },
  });
  await container.start();
  const info = await container.inspect();
  const ip = info.NetworkSettings.Networks[name]?.IPAddress ?? "";
  // Ready when the plain server answers (the gateway's host reaches the bridge).
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://${ip}:8080/`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    ip,
    caPem: pki.ca,
    async stop() {
      await container.remove({ force: true });
      await network.remove();
    },
  };
}
