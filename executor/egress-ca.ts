// The certificate authority the egress proxy terminates TLS with, for hosts
// whose requests get a secret header (`inject`). airlock makes it once and
// keeps it in the data directory; sandboxes trust it through a read-only
// bundle (the system's roots plus this CA). Certificates are made by Debian's
// `openssl` command rather than a JavaScript X.509 library: it is on every
// machine airlock runs on, and it is the reference implementation.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { createSecureContext, type SecureContext } from "node:tls";
import { promisify } from "node:util";

import { CA_BUNDLE_PATH, CA_CERT_PATH } from "./egress-relay.ts";

const run = promisify(execFile);
const SYSTEM_ROOTS = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"];

export class EgressCa {
  /** The CA certificate alone (for NODE_EXTRA_CA_CERTS). */
  readonly certFile: string;
  /** The system's roots plus the CA (for SSL_CERT_FILE and the like). */
  readonly bundleFile: string;
  private readonly keyFile: string;
  private readonly leaves = new Map<string, Promise<SecureContext>>();

  private constructor(dir: string) {
    this.certFile = join(dir, "ca.pem");
    this.keyFile = join(dir, "ca-key.pem");
    this.bundleFile = join(dir, "ca-bundle.pem");
  }

  /** Loads the CA kept in `dir`, making it (and the bundle) the first time. */
  static async open(dir: string): Promise<EgressCa> {
    const ca = new EgressCa(dir);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!existsSync(ca.keyFile) || !existsSync(ca.certFile)) {
      await run("openssl", [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        ca.keyFile,
        "-out",
        ca.certFile,
        "-days",
        "3650",
        "-subj",
        "/CN=airlock egress CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
      ]);
    }
    const roots = SYSTEM_ROOTS.find((f) => existsSync(f));
    const system = roots === undefined ? "" : readFileSync(roots, "utf8");
    writeFileSync(ca.bundleFile, `${system}\n${readFileSync(ca.certFile, "utf8")}`, {
      mode: 0o644,
    });
    return ca;
  }

  /**
   * Copies the public certificates (never the key) into `dir`, named as the
   * sandbox sees them: a volume of the gateway's own, mounted at CA_DIR_PATH
   * when the gateway runs in a container and its paths are not the host's.
   */
  publishTo(dir: string): void {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    writeFileSync(join(dir, basename(CA_CERT_PATH)), readFileSync(this.certFile), { mode: 0o644 });
    writeFileSync(join(dir, basename(CA_BUNDLE_PATH)), readFileSync(this.bundleFile), {
      mode: 0o644,
    });
  }

  /** A TLS context presenting a certificate for `host`, signed by the CA (made once per host). */
  contextFor(host: string): Promise<SecureContext> {
    let context = this.leaves.get(host);
    if (context === undefined) {
      context = this.makeLeaf(host);
      this.leaves.set(host, context);
      context.catch(() => this.leaves.delete(host));
    }
    return context;
  }

  private async makeLeaf(host: string): Promise<SecureContext> {
    const dir = await mkdtemp(join(tmpdir(), "airlock-leaf-"));
    try {
      const key = join(dir, "key.pem");
      const cert = join(dir, "cert.pem");
      const san = /^[0-9.]+$|:/.test(host) ? `IP:${host}` : `DNS:${host}`;
      await run("openssl", [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        key,
        "-out",
        cert,
        "-days",
        "30",
        "-subj",
        `/CN=${host}`,
        "-CA",
        this.certFile,
        "-CAkey",
        this.keyFile,
        "-addext",
        `subjectAltName=${san}`,
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "extendedKeyUsage=serverAuth",
      ]);
      return createSecureContext({ key: await readFile(key), cert: await readFile(cert) });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
