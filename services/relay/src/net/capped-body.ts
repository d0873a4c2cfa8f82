/** Reading HTTP bodies from other services without trusting their size. */
import type { Readable } from 'node:stream';

/** The whole body, or undefined (and the stream destroyed) once it passes `maxBytes`. */
export async function readBodyCapped(body: Readable, maxBytes: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > maxBytes) {
      body.destroy();
      return undefined;
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks, size);
}
