// Builds and reads tar archives in tests, including deliberately malicious ones.
import { Readable } from "node:stream";
import { extract, type Header, pack } from "tar-stream";

export type TarEntry = Partial<Header> & { name: string; body?: string | Buffer };

export async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const p = pack();
  for (const { body, ...header } of entries) {
    if (body === undefined) p.entry(header);
    else p.entry(header, body);
  }
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of Readable.from(p)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export interface ReadEntry {
  name: string;
  type: string;
  mode: number;
  linkname: string | null;
  body: string;
}

export async function readTar(tar: Buffer): Promise<ReadEntry[]> {
  const ex = extract();
  Readable.from([tar]).pipe(ex);
  const out: ReadEntry[] = [];
  for await (const entry of ex) {
    const chunks: Buffer[] = [];
    for await (const c of entry as AsyncIterable<Buffer>) chunks.push(c);
    const h = entry.header;
    out.push({
      name: h.name,
      type: h.type ?? "",
      mode: h.mode ?? 0,
      linkname: h.linkname ?? null,
      body: Buffer.concat(chunks).toString(),
    });
  }
  return out;
}
