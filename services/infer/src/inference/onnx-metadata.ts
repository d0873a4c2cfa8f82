/**
 * Reads `metadata_props` (class names, imgsz, task…) from ONNX model bytes. onnxruntime-node
 * does not expose them, and a full protobuf decode would copy the graph (megabytes of
 * weights), so this walks only the top-level ModelProto fields and skips the rest in place.
 *
 * ModelProto fields used: 2 producer_name (string), 7 graph (required to call it a model),
 * 14 metadata_props (repeated StringStringEntryProto { 1 key, 2 value }).
 */
import { CodedError } from '@detector-worker/shared/errors';
import type { OnnxMetadata } from './types.js';
import { coded } from '../error-codes.js';

const FIELD_PRODUCER_NAME = 2;
const FIELD_GRAPH = 7;
const FIELD_METADATA_PROPS = 14;
/** Key under which producer_name is returned next to the metadata_props entries. */
export const PRODUCER_KEY = '__producer';

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

const utf8 = new TextDecoder('utf-8');

function corrupt(reason: string, offset: number): CodedError {
  return coded('MODEL_CORRUPT', `model file is not a valid ONNX protobuf: ${reason} at byte ${offset}`, { offset });
}

/** Minimal protobuf cursor over one message's bytes [pos, end). */
class Cursor {
  constructor(
    readonly buf: Uint8Array,
    public pos: number,
    readonly end: number,
  ) {}

  done(): boolean {
    return this.pos >= this.end;
  }

  /** Varint as a JS number; exact up to 2^53, which covers every length that can fit in memory. */
  varint(): number {
    const start = this.pos;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw corrupt('truncated varint', start);
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    throw corrupt('varint longer than 10 bytes', start);
  }

  /** Returns [start, end) of a length-delimited payload and moves past it without copying. */
  lengthDelimited(): [number, number] {
    const at = this.pos;
    const len = this.varint();
    if (len > this.end - this.pos) throw corrupt(`length ${len} runs past the end (${this.end - this.pos} bytes left)`, at);
    const start = this.pos;
    this.pos += len;
    return [start, this.pos];
  }

  skip(wireType: number, at: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.advance(8, at);
        return;
      case WIRE_LEN:
        this.lengthDelimited();
        return;
      case WIRE_FIXED32:
        this.advance(4, at);
        return;
      default:
        // 3/4 are proto2 groups, never used by ONNX; 6/7 do not exist.
        throw corrupt(`unsupported wire type ${wireType}`, at);
    }
  }

  private advance(n: number, at: number): void {
    if (this.end - this.pos < n) throw corrupt('truncated fixed-size field', at);
    this.pos += n;
  }

  /** Next field's number and wire type. */
  tag(): { field: number; wire: number; at: number } {
    const at = this.pos;
    const key = this.varint();
    const field = Math.floor(key / 8);
    if (field < 1 || field > 536_870_911) throw corrupt(`invalid field number ${field}`, at);
    return { field, wire: key % 8, at };
  }
}

function readEntry(buf: Uint8Array, start: number, end: number): [string, string] {
  const c = new Cursor(buf, start, end);
  let key = '';
  let value = '';
  while (!c.done()) {
    const { field, wire, at } = c.tag();
    if ((field === 1 || field === 2) && wire === WIRE_LEN) {
      const [s, e] = c.lengthDelimited();
      const text = utf8.decode(buf.subarray(s, e));
      if (field === 1) key = text;
      else value = text;
    } else {
      c.skip(wire, at);
    }
  }
  return [key, value];
}

/**
 * metadata_props as a key -> value record (a later duplicate key wins), plus producer_name
 * under `__producer` when present. Throws MODEL_CORRUPT (422) for bytes that are not a
 * well-formed ModelProto; never anything else.
 */
export function readOnnxMetadata(model: Uint8Array): OnnxMetadata {
  if (!(model instanceof Uint8Array)) throw coded('MODEL_CORRUPT', 'model bytes must be a Uint8Array/Buffer');
  if (model.length === 0) throw coded('MODEL_CORRUPT', 'model file is empty');
  // A null-prototype record: a key named "__proto__" in hostile metadata stays plain data.
  const meta: OnnxMetadata = Object.create(null) as OnnxMetadata;
  const c = new Cursor(model, 0, model.length);
  let hasGraph = false;
  while (!c.done()) {
    const { field, wire, at } = c.tag();
    if (field === FIELD_METADATA_PROPS && wire === WIRE_LEN) {
      const [s, e] = c.lengthDelimited();
      const [key, value] = readEntry(model, s, e);
      if (key !== '') meta[key] = value;
    } else if (field === FIELD_PRODUCER_NAME && wire === WIRE_LEN) {
      const [s, e] = c.lengthDelimited();
      const producer = utf8.decode(model.subarray(s, e));
      if (producer) meta[PRODUCER_KEY] = producer;
    } else {
      if (field === FIELD_GRAPH && wire === WIRE_LEN) hasGraph = true;
      c.skip(wire, at);
    }
  }
  if (!hasGraph) throw coded('MODEL_CORRUPT', 'model file has no graph: it is not an ONNX model');
  return meta;
}
