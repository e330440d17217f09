// A workspace manifest (manifest-cache.ts) as bytes, for the state store: a
// restart then finds what the gateway last saw of each workspace. Compact and
// quick for 10,000 entries (the hash as 32 raw bytes, lengths as integers);
// anything malformed or of another version decodes as no manifest at all.
//   "AM1" count:u32 then per entry:
//   pathLen:u16 path statLen:u16 stat sha256:32 contentLen+1:u32 (0: none) content
import type { CachedEntry, Manifest } from "./manifest-cache.ts";

const MAGIC = Buffer.from("AM1");
const SHA_BYTES = 32;
const HEX64 = /^[0-9a-f]{64}$/;

export function encodeManifest(manifest: Manifest): Buffer {
  let size = 7;
  for (const [path, entry] of manifest) {
    const p = Buffer.byteLength(path, "utf8");
    const s = Buffer.byteLength(entry.stat, "utf8");
    if (p > 0xffff || s > 0xffff || !HEX64.test(entry.sha256)) {
      throw new Error(`a manifest entry cannot be encoded: ${JSON.stringify(path)}`);
    }
    size += 2 + p + 2 + s + SHA_BYTES + 4 + (entry.content?.length ?? 0);
  }
  const b = Buffer.allocUnsafe(size);
  MAGIC.copy(b, 0);
  let at = b.writeUInt32LE(manifest.size, 3);
  for (const [path, entry] of manifest) {
    const p = b.write(path, at + 2, "utf8");
    b.writeUInt16LE(p, at);
    at += 2 + p;
    const s = b.write(entry.stat, at + 2, "utf8");
    b.writeUInt16LE(s, at);
    at += 2 + s;
    at += b.write(entry.sha256, at, "hex");
    at = b.writeUInt32LE(entry.content === undefined ? 0 : entry.content.length + 1, at);
    if (entry.content !== undefined) at += entry.content.copy(b, at);
  }
  return b;
}

/** The manifest, or undefined when the bytes are not a whole, well-formed one. */
export function decodeManifest(bytes: Uint8Array): Map<string, CachedEntry> | undefined {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 7 || !b.subarray(0, 3).equals(MAGIC)) return undefined;
  const count = b.readUInt32LE(3);
  const manifest = new Map<string, CachedEntry>();
  let at = 7;
  const take = (n: number): Buffer | undefined => {
    if (at + n > b.length) return undefined;
    const out = b.subarray(at, at + n);
    at += n;
    return out;
  };
  for (let i = 0; i < count; i++) {
    const pathLen = take(2)?.readUInt16LE(0);
    const path = pathLen === undefined ? undefined : take(pathLen)?.toString("utf8");
    const statLen = path === undefined ? undefined : take(2)?.readUInt16LE(0);
    const stat = statLen === undefined ? undefined : take(statLen)?.toString("utf8");
    const sha = stat === undefined ? undefined : take(SHA_BYTES)?.toString("hex");
    const contentLen = sha === undefined ? undefined : take(4)?.readUInt32LE(0);
    if (path === undefined || stat === undefined || sha === undefined || contentLen === undefined)
      return undefined;
    const entry: CachedEntry = { stat, sha256: sha };
    if (contentLen > 0) {
      const content = take(contentLen - 1);
      if (content === undefined) return undefined;
      // A copy: the store's buffer is not kept alive by one small file.
      entry.content = Buffer.from(content);
    }
    manifest.set(path, entry);
  }
  return at === b.length ? manifest : undefined;
}
