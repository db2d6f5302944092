/**
 * Pure helpers of `npm run bench -- --profile`: where the time of one diagnosis goes, from the `.cpuprofile` files
 * `node --cpu-prof` writes (one per thread: the main thread and, with tsx's loader, the module-loader thread).
 *
 * Each sample is charged to the category of the function on top of the stack (self time) and, once, to every
 * category on its stack (on stack: "time with supabase-js somewhere below", which covers loading it). Categories:
 * the package a file belongs to (the last `node_modules/<name>` or `node_modules/@scope/name` in its path, the
 * @supabase/* packages together as supabase-js), the repository's own folders (lib/ is "our lib"), Node's own
 * JavaScript (`node:` URLs and functions without a URL; its module system apart, and apart from that the main
 * thread's wait on tsx's loader thread, which is blocked time, not work), and V8's pseudo-frames: (program) is native work outside
 * JavaScript (compiling, parsing, the loader's C++), (garbage collector), (idle) is waiting on I/O or timers.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** The parts of a V8 CPU profile (`.cpuprofile`, Chrome DevTools format) that the summary reads. */
export interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber?: number };
    children?: number[];
  }>;
  /** Microseconds. */
  startTime: number;
  endTime: number;
  /** Node id of each sample. */
  samples: number[];
  /** Microseconds since the previous sample (the first: since startTime). */
  timeDeltas: number[];
}

export const OUR_LIB = 'our lib (lib/)';
export const NODE_INTERNALS = 'node internals (other)';
/** The main thread blocked on tsx's loader thread (resolve and load hooks run there in Node 20). */
export const NODE_LOADER_WAIT = 'node: waiting on the loader thread';
/** Node's module system: resolving, reading, lexing and compiling modules. */
export const NODE_MODULES = 'node: module loading';
export const SUPABASE = 'supabase-js (@supabase/*)';

/** The category of one stack frame; `root` is the repository's folder (paths under it are "ours"). */
export function categoryOf(frame: { functionName: string; url: string }, root: string): string {
  const { functionName, url } = frame;
  if (!url) {
    if (functionName === '(idle)') return '(idle: waiting on I/O, timers)';
    if (functionName === '(garbage collector)') return '(garbage collector)';
    if (functionName === '(program)') return '(program: native, compile, parse)';
    if (functionName === '(root)') return '(root)';
    return NODE_INTERNALS;
  }
  if (url.startsWith('node:internal/modules/esm/hooks')) return NODE_LOADER_WAIT;
  if (/^node:internal\/(modules\/|deps\/cjs-module-lexer\/|source_map\/)/.test(url)) return NODE_MODULES;
  if (url.startsWith('node:')) return NODE_INTERNALS;
  if (url.startsWith('wasm:')) return 'wasm (module lexers)';
  let file = url;
  if (file.startsWith('file://')) {
    try {
      file = decodeURIComponent(new URL(file).pathname);
    } catch {
      file = file.slice('file://'.length);
    }
  }
  file = file.replace(/[?#].*$/, '');
  const nm = file.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = file.slice(nm + '/node_modules/'.length).split('/');
    const name = parts[0].startsWith('@') ? `${parts[0]}/${parts[1] ?? ''}` : parts[0];
    return name.startsWith('@supabase/') ? SUPABASE : name;
  }
  const rel = path.relative(root, file);
  if (!rel.startsWith('..') && !path.isAbsolute(rel)) {
    const top = rel.split(path.sep)[0];
    if (top === 'lib') return OUR_LIB;
    return rel.includes(path.sep) ? `${top}/` : rel;
  }
  return 'other';
}

export interface ProfileSummary {
  /** Profile duration (endTime - startTime), ms. */
  totalMs: number;
  /** Everything but (idle), ms: what the thread spent on the CPU. */
  busyMs: number;
  /** Categories by self time, largest first; `onStackMs`: samples with the category anywhere on the stack. */
  categories: Array<{ category: string; selfMs: number; onStackMs: number }>;
  /** Functions by self time, largest first (at most `topFunctions`). */
  functions: Array<{ name: string; category: string; where: string; selfMs: number }>;
}

/**
 * Self and on-stack time per category. A sample lasts until the next one (DevTools' rule): sample i is charged
 * timeDeltas[i + 1], the last one until endTime.
 */
export function summarizeProfile(
  profile: CpuProfile,
  root: string,
  topFunctions = 10,
  bundled?: BundledSources,
): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const sourceOf = (f: CpuProfile['nodes'][number]['callFrame']) => {
    const file = bundled?.(f.url, f.lineNumber);
    return file ? { ...f, url: pathToFileURL(path.resolve(root, file)).href } : f;
  };
  const category = new Map(profile.nodes.map((n) => [n.id, categoryOf(sourceOf(n.callFrame), root)]));
  const stackCategories = new Map<number, Set<string>>();
  const onStackOf = (id: number): Set<string> => {
    let set = stackCategories.get(id);
    if (!set) {
      const up = parent.get(id);
      set = new Set(up === undefined ? [] : onStackOf(up));
      set.add(category.get(id)!);
      stackCategories.set(id, set);
    }
    return set;
  };

  const self = new Map<string, number>();
  const onStack = new Map<string, number>();
  const fnSelf = new Map<number, number>();
  let t = profile.startTime;
  const n = Math.min(profile.samples.length, profile.timeDeltas.length);
  for (let i = 0; i < n; i++) {
    t += profile.timeDeltas[i];
    const next = i + 1 < n ? t + profile.timeDeltas[i + 1] : profile.endTime;
    const dur = Math.max(0, next - t) / 1000;
    const id = profile.samples[i];
    if (!byId.has(id)) continue;
    const cat = category.get(id)!;
    self.set(cat, (self.get(cat) ?? 0) + dur);
    for (const c of onStackOf(id)) onStack.set(c, (onStack.get(c) ?? 0) + dur);
    fnSelf.set(id, (fnSelf.get(id) ?? 0) + dur);
  }

  // The same function reached through different stacks is several nodes: add them up by name and place.
  const fns = new Map<string, { name: string; category: string; where: string; selfMs: number }>();
  for (const [id, ms] of fnSelf) {
    const f = byId.get(id)!.callFrame;
    const where = f.url ? `${shortUrl(f.url, root)}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName}\u0000${where}`;
    const e = fns.get(key) ?? { name: f.functionName || '(anonymous)', category: category.get(id)!, where, selfMs: 0 };
    e.selfMs += ms;
    fns.set(key, e);
  }
  const idle = [...self].filter(([c]) => c.startsWith('(idle')).reduce((s, [, v]) => s + v, 0);
  const totalMs = (profile.endTime - profile.startTime) / 1000;
  return {
    totalMs,
    busyMs: totalMs - idle,
    categories: [...self.keys(), ...[...onStack.keys()].filter((c) => !self.has(c))]
      .filter((c) => c !== '(root)')
      .map((c) => ({ category: c, selfMs: self.get(c) ?? 0, onStackMs: onStack.get(c) ?? 0 }))
      .sort((a, b) => b.selfMs - a.selfMs || b.onStackMs - a.onStackMs),
    functions: [...fns.values()]
      .filter((f) => !f.name.startsWith('('))
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, topFunctions),
  };
}

/** A frame's file, short: `pkg/dist/x.js` inside node_modules, repo-relative for ours, `node:…` as is. */
function shortUrl(url: string, root: string): string {
  let file = url.replace(/^file:\/\//, '').replace(/[?#].*$/, '');
  const nm = file.lastIndexOf('/node_modules/');
  if (nm >= 0) return file.slice(nm + '/node_modules/'.length);
  if (file.startsWith(`${root}/`)) file = file.slice(root.length + 1);
  return file;
}

/** The source file a line of a bundle came from (relative to the repository), or undefined for other URLs. */
export type BundledSources = (url: string, line: number) => string | undefined;

/**
 * Reads esbuild's bundles back to their sources: an unminified esbuild bundle marks where each module's code starts
 * with a comment line holding its path (`// lib/io/context.ts`, `// node_modules/ssh2/lib/index.js`), so every line
 * belongs to the last such comment above it. `read` gives a bundle's text by its file URL (undefined: not a bundle).
 */
export function bundledSources(read: (url: string) => string | undefined): BundledSources {
  const index = new Map<string, string[] | undefined>();
  return (url, line) => {
    if (!index.has(url)) {
      const text = read(url);
      let current: string | undefined;
      index.set(
        url,
        text?.split('\n').map((l) => {
          const m = /^\/\/ (\S+\.(?:[cm]?[jt]s|json))$/.exec(l);
          if (m) current = m[1];
          return current ?? '';
        }),
      );
    }
    return index.get(url)?.[line] || undefined;
  };
}
