/**
 * Class names and input size from model metadata and label files.
 *
 * Ultralytics stores `names` as the Python repr of a dict (`{0: 'person', 1: "rider's bike"}`):
 * single quotes, double quotes when the name holds a single quote, backslash escapes. It is
 * not JSON, so a small literal reader handles it (and JSON, which is close enough).
 */
import { CodedError } from '@detector-worker/shared/errors';
import { coded } from '../error-codes.js';

const MAX_LITERAL_CHARS = 1 << 20;
const MAX_CLASSES = 100_000;
const MAX_IMGSZ = 16_384;

function invalid(message: string, code: 'MODEL_METADATA_INVALID' | 'LABELS_INVALID' = 'MODEL_METADATA_INVALID'): CodedError {
  return coded(code, message);
}

/** Cursor over a Python/JSON literal holding only ints, strings, dicts and lists. */
class LiteralReader {
  pos = 0;
  constructor(readonly text: string) {}

  fail(what: string): never {
    const near = this.text.slice(this.pos, this.pos + 24);
    throw invalid(`class names literal: ${what} at offset ${this.pos}${near ? ` (near ${JSON.stringify(near)})` : ' (at the end)'}`);
  }

  skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos]!)) this.pos++;
  }

  peek(): string | undefined {
    this.skipSpace();
    return this.text[this.pos];
  }

  expect(ch: string): void {
    if (this.peek() !== ch) this.fail(`expected '${ch}'`);
    this.pos++;
  }

  /** Consumes `ch` when it is next. */
  accept(ch: string): boolean {
    if (this.peek() !== ch) return false;
    this.pos++;
    return true;
  }

  int(): number {
    this.skipSpace();
    const m = /^\d{1,9}/.exec(this.text.slice(this.pos, this.pos + 10));
    if (!m) this.fail('expected a class index');
    this.pos += m[0].length;
    return Number(m[0]);
  }

  string(): string {
    const quote = this.peek();
    if (quote !== "'" && quote !== '"') this.fail('expected a quoted string');
    this.pos++;
    let out = '';
    for (;;) {
      const ch = this.text[this.pos];
      if (ch === undefined || ch === '\n') this.fail('unterminated string');
      this.pos++;
      if (ch === quote) return out;
      if (ch !== '\\') {
        out += ch;
        continue;
      }
      const esc = this.text[this.pos++];
      switch (esc) {
        case undefined:
          this.fail('unterminated string');
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case 'a': out += '\x07'; break;
        case '0': out += '\0'; break;
        case 'x': out += this.hexChar(2); break;
        case 'u': out += this.hexChar(4); break;
        case 'U': out += this.hexChar(8); break;
        case '\\': case "'": case '"': case '/': out += esc; break;
        // Python keeps unknown escapes verbatim.
        default: out += `\\${esc}`;
      }
    }
  }

  private hexChar(digits: number): string {
    const hex = this.text.slice(this.pos, this.pos + digits);
    if (hex.length !== digits || !/^[0-9a-fA-F]+$/.test(hex)) this.fail(`bad \\x/\\u escape`);
    this.pos += digits;
    const code = parseInt(hex, 16);
    if (code > 0x10ffff) this.fail('escape beyond Unicode');
    return String.fromCodePoint(code);
  }

  /** Dict key: a bare int (Python) or a quoted int (JSON). */
  key(): number {
    const ch = this.peek();
    if (ch === "'" || ch === '"') {
      const s = this.string();
      if (!/^\d{1,9}$/.test(s)) this.fail(`key ${JSON.stringify(s)} is not a class index`);
      return Number(s);
    }
    return this.int();
  }

  atEnd(): boolean {
    this.skipSpace();
    return this.pos >= this.text.length;
  }
}

function inOrder(entries: Map<number, string>): string[] {
  const names: string[] = [];
  for (let i = 0; i < entries.size; i++) {
    const name = entries.get(i);
    if (name === undefined) {
      const keys = [...entries.keys()].sort((a, b) => a - b);
      throw invalid(`class indices must be 0..${entries.size - 1}; index ${i} is missing (have ${keys.slice(0, 10).join(', ')}${keys.length > 10 ? ', …' : ''})`);
    }
    names.push(name);
  }
  return names;
}

/**
 * Names in index order from `{0: 'a', 1: 'b'}` (Python repr or JSON object) or `['a', 'b']`
 * (Python list or JSON array). Throws MODEL_METADATA_INVALID otherwise.
 */
export function parseUltralyticsNames(literal: string): string[] {
  if (typeof literal !== 'string') throw invalid('class names must be a string literal');
  if (literal.length > MAX_LITERAL_CHARS) throw invalid(`class names literal is ${literal.length} characters, over the ${MAX_LITERAL_CHARS} limit`);
  const r: LiteralReader = new LiteralReader(literal.replace(/^\uFEFF/, ''));
  const open = r.peek();
  let names: string[];
  if (open === '{') {
    r.pos++;
    const entries = new Map<number, string>();
    while (!r.accept('}')) {
      const index = r.key();
      r.expect(':');
      const name = r.string();
      if (entries.has(index)) r.fail(`duplicate class index ${index}`);
      if (entries.size >= MAX_CLASSES) r.fail(`more than ${MAX_CLASSES} classes`);
      entries.set(index, name);
      if (!r.accept(',')) {
        r.expect('}');
        break;
      }
    }
    names = inOrder(entries);
  } else if (open === '[') {
    r.pos++;
    names = [];
    while (!r.accept(']')) {
      names.push(r.string());
      if (names.length > MAX_CLASSES) r.fail(`more than ${MAX_CLASSES} classes`);
      if (!r.accept(',')) {
        r.expect(']');
        break;
      }
    }
  } else {
    r.fail('expected a dict {0: ...} or a list [...] of class names');
  }
  if (!r.atEnd()) r.fail('unexpected text after the class names');
  if (names.length === 0) throw invalid('class names literal is empty');
  return names;
}

/**
 * A labels file: a JSON array (or a `{0: ...}` dict), else one name per line. Lines are
 * trimmed; trailing empty lines are ignored, but an empty line in the middle is an error
 * because dropping it would shift every later class index.
 */
export function parseLabelsFile(text: string): string[] {
  const body = text.replace(/^\uFEFF/, '');
  const head = body.trimStart()[0];
  if (head === '[' || head === '{') {
    try {
      return parseUltralyticsNames(body);
    } catch (err) {
      throw invalid(`labels file: ${err instanceof Error ? err.message : String(err)}`, 'LABELS_INVALID');
    }
  }
  const lines = body.split(/\r?\n/).map((l) => l.trim());
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0) throw invalid('labels file is empty', 'LABELS_INVALID');
  if (lines.length > MAX_CLASSES) throw invalid(`labels file has more than ${MAX_CLASSES} lines`, 'LABELS_INVALID');
  const blank = lines.indexOf('');
  if (blank >= 0) throw invalid(`labels file line ${blank + 1} is empty; class indices follow line numbers, so remove it or name the class`, 'LABELS_INVALID');
  return lines;
}

/** `imgsz` metadata -> [height, width]: `[640, 640]`, `(480, 640)`, `[320]` or `640`. */
export function parseImgsz(literal: string): [number, number] {
  const text = String(literal).trim();
  const inner = /^[[(]\s*(.*?)\s*,?\s*[\])]$/s.exec(text)?.[1] ?? text;
  const parts = inner.split(',').map((p) => p.trim());
  const nums = parts.map((p) => (/^\d{1,6}$/.test(p) ? Number(p) : NaN));
  const valid = nums.length >= 1 && nums.length <= 2 && nums.every((n) => n >= 1 && n <= MAX_IMGSZ);
  if (!valid) throw invalid(`imgsz ${JSON.stringify(text.slice(0, 40))} is not a size like [640, 640] or 640`);
  const h = nums[0]!;
  return [h, nums[1] ?? h];
}
