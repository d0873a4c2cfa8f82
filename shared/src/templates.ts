/**
 * Template strings of pipeline.json: `{name}` reads a context variable, `{branch.field}`
 * reads a field of a branch result. Anything else in braces (JSON punctuation like
 * `{"event": ...}`) is literal text.
 *
 * JSON templates (text starting with `{"` or `[`) get JSON-aware substitution: a value
 * inside a string literal is escaped as string content, a value outside one is written as
 * a JSON value. So a class name with a quote cannot break the message.
 */

export type TemplateValue = string | number | boolean | null | undefined;
export type TemplateLookup = (name: string, field: string | undefined) => TemplateValue;

export interface Placeholder {
  start: number;
  end: number;
  name: string;
  field: string | undefined;
  /** true when the placeholder sits inside a JSON string literal of a JSON template. */
  inString: boolean;
}

export interface TemplateOptions {
  /**
   * Force JSON-aware (true) or plain-text (false) substitution instead of guessing from the
   * first character. Redis keys, channels and SQL values are text: `{display_id}:{uuid}`
   * must not become `"abc":"..."`.
   */
  json?: boolean;
}

export interface RenderResult {
  text: string;
  /** Placeholders that had no value (rendered as empty / null). */
  missing: string[];
}

const PLACEHOLDER = /\{([A-Za-z0-9_][A-Za-z0-9_-]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?\}/y;

export function isJsonTemplate(template: string): boolean {
  // `{"…` / `[…` is JSON; `{name} …` starts with a placeholder and is plain text.
  return /^\s*(\{\s*("|\})|\[)/.test(template);
}

/** Finds placeholders, tracking JSON string state so escaping knows where each one sits. */
export function parseTemplate(template: string, options: TemplateOptions = {}): Placeholder[] {
  const json = options.json ?? isJsonTemplate(template);
  const out: Placeholder[] = [];
  let inString = false;
  for (let i = 0; i < template.length; i++) {
    const ch = template[i];
    if (json && inString && ch === '\\') {
      i++;
      continue;
    }
    if (json && ch === '"') {
      inString = !inString;
      continue;
    }
    if (ch !== '{') continue;
    PLACEHOLDER.lastIndex = i;
    const m = PLACEHOLDER.exec(template);
    if (!m) continue;
    out.push({ start: i, end: i + m[0].length, name: m[1]!, field: m[2], inString: json && inString });
    i += m[0].length - 1;
  }
  return out;
}

function plain(value: TemplateValue): string {
  if (value === null || value === undefined) return '';
  return String(value);
}

export function renderTemplate(template: string, lookup: TemplateLookup, options: TemplateOptions = {}): RenderResult {
  const json = options.json ?? isJsonTemplate(template);
  const missing: string[] = [];
  let text = '';
  let last = 0;
  for (const p of parseTemplate(template, { json })) {
    const value = lookup(p.name, p.field);
    if (value === undefined || value === null) missing.push(p.field ? `${p.name}.${p.field}` : p.name);
    text += template.slice(last, p.start);
    if (!json) text += plain(value);
    else if (p.inString) text += JSON.stringify(plain(value)).slice(1, -1);
    else text += JSON.stringify(value ?? null);
    last = p.end;
  }
  text += template.slice(last);
  return { text, missing };
}

/** A lookup over a flat context plus per-branch results (`{branch.field}`). */
export function contextLookup(context: Record<string, unknown>, branches: Record<string, Record<string, unknown>> = {}): TemplateLookup {
  const scalar = (v: unknown): TemplateValue => (v === null || ['string', 'number', 'boolean'].includes(typeof v) ? (v as TemplateValue) : undefined);
  return (name, field) => {
    if (field === undefined) return Object.prototype.hasOwnProperty.call(context, name) ? scalar(context[name]) : undefined;
    const branch = Object.prototype.hasOwnProperty.call(branches, name) ? branches[name] : undefined;
    if (!branch || !Object.prototype.hasOwnProperty.call(branch, field)) return undefined;
    return scalar(branch[field]);
  };
}
