/**
 * The character sets of text-reading models, from the files their trainers ship:
 * fast-plate-ocr's plate config (a flat yaml of scalars) and PaddleOCR's dictionary (one
 * character per line). Only the few yaml keys a reader needs are parsed, by hand: the files
 * are flat `key: value` lines, and a full yaml parser would be a runtime dependency for five
 * scalars.
 */

export interface PlateOcrConfig {
  slots: number;
  alphabet: string[];
  padChar: string;
  height: number;
  width: number;
  colorMode: 'rgb' | 'grayscale';
}

/** Files larger than this are not plate configs or dictionaries (a real one is ~1 KB / ~30 KB). */
export const MAX_OCR_FILE_BYTES = 1024 * 1024;
/** More characters than any script a plate or text reader is trained on. */
const MAX_CHARSET = 20000;

export class OcrConfigError extends Error {}

function unquote(value: string): string {
  const v = value.trim();
  if (v.length >= 2 && ((v.startsWith("'") && v.endsWith("'")) || (v.startsWith('"') && v.endsWith('"')))) {
    const inner = v.slice(1, -1);
    return v.startsWith("'") ? inner.replace(/''/g, "'") : inner.replace(/\\"/g, '"').replace(/\\\\/g, '\\');
  }
  return v;
}

/** The value part of `key: value # comment`, with a comment outside quotes removed. */
function valueOf(rest: string): string {
  let quote: string | null = null;
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i]!;
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(rest[i - 1]!))) return rest.slice(0, i);
  }
  return rest;
}

/** Top-level `key: scalar` pairs of a flat yaml document; nested or list values are skipped. */
export function parseFlatYaml(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.replace(/^\uFEFF/, '').split(/\r?\n/)) {
    if (!raw.trim() || raw.trimStart().startsWith('#') || /^\s/.test(raw)) continue;
    const m = /^([A-Za-z_][\w-]*)\s*:(.*)$/.exec(raw);
    if (!m) continue;
    const value = unquote(valueOf(m[2]!));
    if (value !== '') out.set(m[1]!, value);
  }
  return out;
}

function positiveInt(map: Map<string, string>, key: string, max: number): number {
  const raw = map.get(key);
  if (raw === undefined) throw new OcrConfigError(`has no ${key}`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1 || n > max) throw new OcrConfigError(`${key} must be an integer from 1 to ${max}, not ${JSON.stringify(raw)}`);
  return n;
}

/** fast-plate-ocr's plate config: slots, alphabet (pad character included), input size, colour mode. */
export function parsePlateOcrConfig(text: string): PlateOcrConfig {
  if (text.length > MAX_OCR_FILE_BYTES) throw new OcrConfigError('is too large to be a plate OCR config');
  const map = parseFlatYaml(text);
  const alphabetText = map.get('alphabet');
  if (!alphabetText) throw new OcrConfigError('has no alphabet');
  const alphabet = [...alphabetText];
  if (alphabet.length > MAX_CHARSET) throw new OcrConfigError(`alphabet has ${alphabet.length} characters; at most ${MAX_CHARSET}`);
  if (new Set(alphabet).size !== alphabet.length) throw new OcrConfigError('alphabet repeats a character');
  const padChar = map.get('pad_char') ?? '_';
  if ([...padChar].length !== 1 || !alphabet.includes(padChar)) throw new OcrConfigError(`pad_char ${JSON.stringify(padChar)} must be one character of the alphabet`);
  const mode = (map.get('image_color_mode') ?? 'rgb').toLowerCase();
  if (mode !== 'rgb' && mode !== 'grayscale') throw new OcrConfigError(`image_color_mode must be rgb or grayscale, not ${JSON.stringify(mode)}`);
  return {
    slots: positiveInt(map, 'max_plate_slots', 64),
    alphabet,
    padChar,
    height: positiveInt(map, 'img_height', 1024),
    width: positiveInt(map, 'img_width', 4096),
    colorMode: mode,
  };
}

/**
 * A CTC dictionary: one character per line, in class order after the blank (class 0).
 * Trailing empty lines are ignored; an empty line inside would shift every class after it.
 */
export function parseCtcDictionary(text: string): string[] {
  if (text.length > MAX_OCR_FILE_BYTES) throw new OcrConfigError('is too large to be a dictionary');
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  if (!lines.length) throw new OcrConfigError('is empty');
  if (lines.length > MAX_CHARSET) throw new OcrConfigError(`has ${lines.length} lines; at most ${MAX_CHARSET}`);
  lines.forEach((line, i) => {
    if ([...line].length !== 1) throw new OcrConfigError(`line ${i + 1} must hold exactly one character, not ${JSON.stringify(line.slice(0, 20))}`);
  });
  return lines;
}
