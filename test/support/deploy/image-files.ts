/**
 * The files an image would hold, worked out from its Dockerfile without a container engine:
 * what each COPY brings from the build context (.dockerignore applied) or from another stage,
 * and what `tsc -b <project>` in a stage emits (the .ts files of the project graph that the
 * stage holds, mapped from rootDir to outDir). node_modules from `npm ci` are not listed: the
 * deploy tests check the install flags instead.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { copies, dockerIgnored, type Dockerfile } from './dockerfile.js';

/** Where a file in an image comes from: a repository path, and whether tsc compiled it from there. */
export interface ImageFile {
  /** Path relative to the stage's WORKDIR (the images mirror the repository layout under /app). */
  path: string;
  /** Repository path of the file itself (copied) or of the .ts it was compiled from. */
  origin: string;
  compiled: boolean;
}

export class ImageFiles {
  constructor(
    private readonly repoRoot: string,
    private readonly ignoreText: string,
  ) {}

  /** Files under a repository path that reach the build context (ignored folders are not entered). */
  contextFiles(path: string): string[] {
    const clean = posix.normalize(path).replace(/\/+$/, '');
    if (dockerIgnored(this.ignoreText, clean)) return [];
    const full = join(this.repoRoot, clean);
    if (!existsSync(full)) return [];
    if (!statSync(full).isDirectory()) return [clean];
    return readdirSync(full).flatMap((name) => this.contextFiles(posix.join(clean, name)));
  }

  /** Every file of a stage (by name or index) with its origin, after its COPY and `tsc -b` instructions. */
  stage(file: Dockerfile, which: string | number): ImageFile[] {
    const stage = typeof which === 'number' ? file.stages.at(which) : file.stages.find((s) => s.name === which);
    if (!stage) throw new Error(`no stage ${which}`);
    const byPath = new Map<string, ImageFile>();
    const add = (f: ImageFile) => byPath.set(f.path, f);
    const copyAt = new Map(copies(stage).map((c) => [c.line, c]));
    let workdir = '/';
    for (const instruction of stage.instructions) {
      if (instruction.keyword === 'WORKDIR') workdir = posix.resolve(workdir, instruction.args);
      if (instruction.keyword === 'COPY' || instruction.keyword === 'ADD') {
        const copy = copyAt.get(instruction.line)!;
        const destination = posix.relative('/app', posix.resolve(workdir, copy.destination));
        const intoFolder = copy.destination.endsWith('/') || copy.sources.length > 1;
        for (const source of copy.sources) {
          const from = copy.from ? this.stage(file, copy.from) : undefined;
          const sourcePath = copy.from ? posix.relative('/app', posix.resolve('/app', source)) : posix.normalize(source).replace(/\/+$/, '');
          const found = from
            ? from.filter((f) => f.path === sourcePath || f.path.startsWith(`${sourcePath}/`)).map((f) => ({ ...f, rel: f.path.slice(sourcePath.length) }))
            : this.contextFiles(sourcePath).map((p) => ({ path: p, origin: p, compiled: false, rel: p.slice(sourcePath.length) }));
          for (const f of found) {
            // A folder's contents land in the destination; a single file lands in it (folder) or as it.
            const target = f.rel === '' ? (intoFolder ? posix.join(destination, posix.basename(f.path)) : destination) : posix.join(destination, f.rel);
            add({ path: posix.normalize(target), origin: f.origin, compiled: f.compiled });
          }
        }
      }
      if (instruction.keyword === 'RUN') {
        for (const m of instruction.args.matchAll(/tsc -b ([\w./-]+)/g)) {
          const present = new Set(byPath.keys());
          for (const emitted of this.tscEmits(m[1]!, present)) add(emitted);
        }
      }
    }
    return [...byPath.values()];
  }

  /** The .js files `tsc -b <project>` writes, from the .ts files of its project graph that the stage holds. */
  tscEmits(project: string, present: Set<string>, seen = new Set<string>()): ImageFile[] {
    const configPath = project.endsWith('.json') ? project : posix.join(project, 'tsconfig.json');
    if (seen.has(configPath)) return [];
    seen.add(configPath);
    const config = JSON.parse(readFileSync(join(this.repoRoot, configPath), 'utf8')) as {
      compilerOptions?: { rootDir?: string; outDir?: string };
      include?: string[];
      references?: { path: string }[];
    };
    const dir = posix.dirname(configPath);
    const out: ImageFile[] = [];
    for (const ref of config.references ?? []) out.push(...this.tscEmits(posix.normalize(posix.join(dir, ref.path)), present, seen));
    const rootDir = posix.join(dir, config.compilerOptions?.rootDir ?? '.');
    const outDir = posix.join(dir, config.compilerOptions?.outDir ?? '.');
    for (const include of config.include ?? []) {
      const folder = posix.normalize(posix.join(dir, include.replace(/\/\*\*.*$/, '')));
      for (const source of [...present].filter((p) => p.startsWith(`${folder}/`) && p.endsWith('.ts') && !p.endsWith('.d.ts'))) {
        out.push({ path: posix.join(outDir, posix.relative(rootDir, source)).replace(/\.ts$/, '.js'), origin: source, compiled: true });
      }
    }
    return out;
  }
}

/** Why a file must not be in an image, or undefined when it may be. */
export function testCodeProblem(repoRoot: string, file: ImageFile): string | undefined {
  const top = file.origin.split('/')[0]!;
  if (['testkit', 'tools', 'test', 'bench'].includes(top)) return `comes from ${top}/ (${file.origin})`;
  if (/\.test\./.test(file.path) || /\.test\./.test(file.origin)) return `is a test (${file.origin})`;
  if (file.compiled && /(from\s+|import\s*\(\s*|require\s*\(\s*)['"]@detector-worker\/(testkit|tools)\b/.test(readFileSync(join(repoRoot, file.origin), 'utf8'))) {
    return `imports dev-only code (${file.origin})`;
  }
  if (posix.basename(file.origin) === 'package.json' && file.origin !== 'package.json') {
    const pkg = JSON.parse(readFileSync(join(repoRoot, file.origin), 'utf8')) as { dependencies?: Record<string, string> };
    const dev = Object.keys(pkg.dependencies ?? {}).filter((d) => d === '@detector-worker/testkit' || d === '@detector-worker/tools');
    if (dev.length) return `depends on ${dev.join(', ')} (${file.origin})`;
  }
  return undefined;
}
