// TLS for deployments without a reverse proxy: a certificate chain and its
// private key, read from PEM files at start-up. Checked here, before the
// server starts, so a wrong path or a mismatched pair stops the gateway with a
// sentence naming the variable instead of failing on the first handshake.
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

export class TlsError extends Error {
  override name = "TlsError";
}

function read(variable: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (cause) {
    throw new TlsError(`${variable}=${path} cannot be read: ${(cause as Error).message}`);
  }
}

/** Both paths or neither; each must hold PEM, and the key must belong to the certificate. */
export function loadTls(
  certPath: string | undefined,
  keyPath: string | undefined,
): TlsFiles | undefined {
  if (certPath === undefined && keyPath === undefined) return undefined;
  if (certPath === undefined || keyPath === undefined) {
    const [set, missing] =
      certPath === undefined
        ? ["AIRLOCK_TLS_KEY", "AIRLOCK_TLS_CERT"]
        : ["AIRLOCK_TLS_CERT", "AIRLOCK_TLS_KEY"];
    throw new TlsError(`${set} is set but ${missing} is not: set both (PEM files) or neither`);
  }
  const cert = read("AIRLOCK_TLS_CERT", certPath);
  const key = read("AIRLOCK_TLS_KEY", keyPath);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (cause) {
    throw new TlsError(
      `AIRLOCK_TLS_CERT=${certPath} is not a PEM certificate: ${(cause as Error).message}`,
    );
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (cause) {
    throw new TlsError(
      `AIRLOCK_TLS_KEY=${keyPath} is not an unencrypted PEM private key: ${(cause as Error).message}`,
    );
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new TlsError(
      `AIRLOCK_TLS_KEY=${keyPath} does not belong to the certificate in AIRLOCK_TLS_CERT=${certPath} (mismatched pair)`,
    );
  }
  if (Date.parse(x509.validTo) < Date.now()) {
    throw new TlsError(`AIRLOCK_TLS_CERT=${certPath} expired on ${x509.validTo}`);
  }
  return { cert, key };
}
