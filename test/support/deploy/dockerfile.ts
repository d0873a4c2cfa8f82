/**
 * Just enough of Dockerfile and .dockerignore syntax for the deploy tests: instructions with
 * line continuations, build stages, COPY sources and flags, exec-form (JSON) arguments, and
 * the ignore patterns that decide what reaches the build context.
 */

export interface Instruction {
  keyword: string;
  /** Arguments as written (continuations joined). */
  args: string;
  line: number;
}

export interface Stage {
  /** Image the stage starts from, after ARG substitution. */
  from: string;
  name?: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  globalArgs: Record<string, string>;
  stages: Stage[];
}

export function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  const lines = text.split(/\r?\n/);
  let pending = '';
  let start = 0;
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) return;
    if (pending !== '' && line.startsWith('#')) return; // comments inside a continued instruction
    if (pending === '') start = i + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      return;
    }
    const full = `${pending}${line}`.trim();
    pending = '';
    const m = /^(\S+)\s*(.*)$/s.exec(full);
    if (m) instructions.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start });
  });
  if (pending !== '') throw new Error('Dockerfile ends inside a continued line');

  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      if (!m) throw new Error(`line ${instruction.line}: cannot read FROM ${instruction.args}`);
      const from = m[1]!.replace(/\$\{(\w+)\}|\$(\w+)/g, (_all, a: string | undefined, b: string | undefined) => globalArgs[(a ?? b)!] ?? '');
      stages.push({ from, ...(m[2] ? { name: m[2] } : {}), instructions: [] });
    } else if (stages.length === 0) {
      if (instruction.keyword !== 'ARG') throw new Error(`line ${instruction.line}: ${instruction.keyword} before FROM`);
      const [name, value = ''] = instruction.args.split('=');
      globalArgs[name!.trim()] = value.trim();
    } else stages[stages.length - 1]!.instructions.push(instruction);
  }
  return { globalArgs, stages };
}

/** Exec-form arguments (`["node", "main.js"]`), or undefined for the shell form. */
export function execForm(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) throw new Error(`not an exec-form array: ${args}`);
  return parsed as string[];
}

export interface Copy {
  from?: string;
  sources: string[];
  destination: string;
  line: number;
}

export function copies(stage: Stage): Copy[] {
  return stage.instructions
    .filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD')
    .map((i) => {
      const words = execForm(i.args) ?? i.args.split(/\s+/);
      const flags = words.filter((w) => w.startsWith('--'));
      const paths = words.filter((w) => !w.startsWith('--'));
      const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
      if (paths.length < 2) throw new Error(`line ${i.line}: COPY needs a source and a destination`);
      return { ...(from ? { from } : {}), sources: paths.slice(0, -1), destination: paths[paths.length - 1]!, line: i.line };
    });
}

/** `ENV A=1 B=2` (and the old `ENV A 1`) as pairs. */
export function envPairs(stage: Stage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const i of stage.instructions.filter((x) => x.keyword === 'ENV')) {
    if (!i.args.includes('=')) {
      const [name, ...rest] = i.args.split(/\s+/);
      out[name!] = rest.join(' ');
      continue;
    }
    for (const m of i.args.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S*)/g)) out[m[1]!] = m[2]!.replace(/^"|"$/g, '');
  }
  return out;
}

/** Translates a .dockerignore pattern to a regular expression over slash-separated paths. */
function patternRegex(pattern: string): RegExp {
  let p = pattern.replace(/^\/+/, '').replace(/\/+$/, '');
  if (p.startsWith('./')) p = p.slice(2);
  let out = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*' && p[i + 1] === '*') {
      // `**/` matches any number of folders, including none.
      if (p[i + 2] === '/') {
        out += '(?:.*/)?';
        i += 2;
      } else {
        out += '.*';
        i += 1;
      }
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

/** Whether .dockerignore keeps `path` (or one of its parent folders) out of the build context. */
export function dockerIgnored(ignoreText: string, path: string): boolean {
  const rules = ignoreText
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => (l.startsWith('!') ? { keep: true, re: patternRegex(l.slice(1)) } : { keep: false, re: patternRegex(l) }));
  const parts = path.replace(/^\.\//, '').replace(/\/+$/, '').split('/');
  let ignored = false;
  // Folders first, then the path itself: the last rule that matches decides, so an excluded
  // folder excludes what it holds unless a later `!` rule brings a path back.
  for (let n = 1; n <= parts.length; n++) {
    const prefix = parts.slice(0, n).join('/');
    for (const rule of rules) if (rule.re.test(prefix)) ignored = !rule.keep;
  }
  return ignored;
}
