import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import picomatch from 'picomatch';
import type * as TypeScript from 'typescript';

// Loaded with require: through tsx's ESM loader the 9 MB compiler costs a second more to load.
const ts: typeof TypeScript = createRequire(import.meta.url)('typescript');

// The layering rules of docs/architecture.md, checked on every source file under src/ by
// `npm run lint`:
//   store-imports-area     a file under src/store/ imports only src/store/, src/common/ and packages.
//   query-outside-storage  queries (Kysely builders, `sql` templates, transactions, withPgClient, the
//                          database drivers) appear only in storage files.
//   decision-imports-io    a decision file (the pure modules listed below) imports no I/O package and
//                          no storage, directly or through the modules it imports at run time (a
//                          type-only import of a src/ module is erased: allowed, not followed).
// Files are parsed with the TypeScript parser (no type checking), so comments and strings never match.

/**
 * Storage files: the connection, migrations and table types, each area's `<noun>-store.ts`, and the
 * SQLite writer thread of the tracking raw log (a worker module, plain JavaScript).
 */
export const storageFiles = ['src/store/**', 'src/**/*-store.ts', 'src/tracking/sqlite-event-worker.mjs'];

/** Tests and test fixtures may query directly (fixtures insert rows in states no area writes them in). */
export const queryExemptFiles = ['src/**/*.test.ts', 'src/*/testing/**'];

/** The pure modules: decisions and arithmetic over data, time passed in. Add new ones here. */
export const decisionFiles = [
  'src/api/auth-limiter.ts',
  'src/api/problem.ts',
  'src/metrics/labels.ts',
  'src/webhooks/retry.ts',
  'src/audience/csv-rows.ts',
  'src/bounce/classifier.ts',
  'src/bounce/classify-bounce.ts',
  'src/bounce/default-verdict.ts',
  'src/bounce/feedback-report.ts',
  'src/bounce/inbound-limits.ts',
  'src/common/client-connections.ts',
  'src/bounce/inbound-policy.ts',
  'src/bounce/mime-*.ts',
  'src/bounce/original-message.ts',
  'src/bounce/parse-bounce.ts',
  'src/bounce/parsed-bounce.ts',
  'src/bounce/qualification-normalize.ts',
  'src/bounce/reply-classifier.ts',
  'src/bounce/report-fields.ts',
  'src/bounce/ses-notification.ts',
  'src/bounce/smtp-reply.ts',
  'src/bounce/text-report.ts',
  'src/bounce/types.ts',
  'src/bounce/verp.ts',
  'src/config/safety.ts',
  'src/delivery/eta.ts',
  'src/delivery/state-machine.ts',
  'src/doctor/check-*.ts',
  'src/doctor/checks.ts',
  'src/doctor/finding.ts',
  'src/doctor/format.ts',
  'src/doctor/snapshot.ts',
  'src/doctor/replies.ts',
  'src/mta/attempt-policy.ts',
  'src/mta/fair-share.ts',
  'src/mta/outcome.ts',
  'src/mta/pool-decisions.ts',
  'src/mta/smtp-reply-reader.ts',
  'src/mta/smtp-transparency.mjs',
  'src/mta/retry-schedule.ts',
  'src/mta/routes.ts',
  'src/mta/source-selection.ts',
  'src/quarantine/decide.ts',
  'src/quarantine/types.ts',
  'src/rules-versions/diff.ts',
  'src/shaping/affinity.ts',
  'src/shaping/backoff.ts',
  'src/shaping/breaker.ts',
  'src/shaping/compiled-rules.ts',
  'src/shaping/duration.ts',
  'src/shaping/mask.ts',
  'src/shaping/path-counters.ts',
  'src/shaping/public-ids.ts',
  'src/shaping/reply.ts',
  'src/shaping/sliding-window.ts',
  'src/shaping/snapshot.ts',
  'src/shaping/stats-view.ts',
  'src/shaping/throttle.ts',
  'src/tracking/automation.ts',
  'src/tracking/consolidate.ts',
  'src/tracking/links.ts',
  'src/tracking/mirror-html.ts',
  'src/workflows/engine-decisions.ts',
  'src/workflows/health.ts',
  'src/workflows/index-bloat.ts',
  'src/workflows/schedule.ts',
];

/** Modules that do I/O (a subpath such as `node:fs/promises` counts as its module). */
export const ioModules = [
  'node:fs',
  'node:net',
  'node:dns',
  'node:http',
  'node:https',
  'node:child_process',
  'node:worker_threads',
  'kysely',
  'pg',
  'pg-copy-streams',
  'better-sqlite3',
  'ioredis',
  'nodemailer',
  'smtp-server',
  'fastify',
];

/** Packages whose only user is storage: importing them (other than for types) is querying. */
const databasePackages = ['kysely', 'pg', 'pg-copy-streams', 'better-sqlite3'];

/** Kysely builder and executor methods, and the Store's raw-client escape hatch. */
const queryMethods = [
  'selectFrom',
  'selectNoFrom',
  'insertInto',
  'replaceInto',
  'updateTable',
  'deleteFrom',
  'mergeInto',
  'executeQuery',
  'transaction',
  'withTables',
  'withPgClient',
];

/** A text without any of these words cannot hold a query: it is not parsed for that rule. */
const mayQuery = new RegExp(`\\b(?:${queryMethods.join('|')}|sql)\\b|(?:${databasePackages.join('|')})['"]`);

export type Rule = 'store-imports-area' | 'query-outside-storage' | 'decision-imports-io';

export interface Violation {
  file: string;
  line: number;
  rule: Rule;
  message: string;
}

export interface Source {
  /** Repository-relative path with forward slashes, e.g. `src/mta/queue-store.ts`. */
  path: string;
  text: string;
}

interface ImportRef {
  specifier: string;
  line: number;
  /** Erased at compile time: `import type`, or every name marked `type`. */
  typeOnly: boolean;
  /** The repository path it resolves to, for relative specifiers. */
  target?: string;
}

interface Parsed {
  imports: ImportRef[];
  queries: Array<{ line: number; what: string }>;
}

const isStorage = picomatch(storageFiles);
const isQueryExempt = picomatch(queryExemptFiles);
const isDecision = picomatch(decisionFiles);

export function checkArchitecture(sources: readonly Source[]): Violation[] {
  const parsed = lazyParse(sources);
  const violations: Violation[] = [];
  for (const { path: file, text } of sources) {
    if (file.startsWith('src/store/')) {
      for (const ref of parsed(file)?.imports ?? []) {
        const area = ref.target && areaOf(ref.target);
        if (area && area !== 'store' && area !== 'common')
          violations.push({
            file,
            line: ref.line,
            rule: 'store-imports-area',
            message: `src/store/ imports ${ref.target} (an area); store/ may import only store/ and common/`,
          });
      }
    }
    if (!isStorage(file) && !isQueryExempt(file) && mayQuery.test(text)) {
      for (const query of parsed(file)?.queries ?? [])
        violations.push({
          file,
          line: query.line,
          rule: 'query-outside-storage',
          message: `${query.what} outside a storage file: move the query into the area's *-store.ts`,
        });
    }
    if (isDecision(file)) {
      for (const ref of parsed(file)?.imports ?? []) {
        const reason = ioReason(ref, parsed, new Set([file]));
        if (reason)
          violations.push({
            file,
            line: ref.line,
            rule: 'decision-imports-io',
            message: `decision file imports ${reason}; decisions stay pure (I/O belongs in the area's adapters)`,
          });
      }
    }
  }
  return violations.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
}

/** Why importing `ref` brings I/O into a decision file, or undefined when it does not. */
function ioReason(ref: ImportRef, parsed: Parser, seen: Set<string>): string | undefined {
  // Even a type from an I/O package means the decision handles a connection, a socket or a query.
  const io = ioModuleOf(ref.specifier);
  if (io) return io;
  // A type-only import of a src/ module brings no code: row types (store/tables.ts) and an area's
  // storage interface (mta/mta-store.ts's ClaimedLog) describe data.
  if (!ref.target || ref.typeOnly) return undefined;
  if (isStorage(ref.target)) return `${ref.target} (storage)`;
  if (seen.has(ref.target)) return undefined;
  seen.add(ref.target);
  for (const next of parsed(ref.target)?.imports ?? []) {
    if (next.typeOnly) continue;
    const reason = ioReason(next, parsed, seen);
    if (reason) return reason.includes(' through ') ? reason : `${reason} through ${ref.target}`;
  }
  return undefined;
}

function ioModuleOf(specifier: string): string | undefined {
  const name = specifier.startsWith('node:') || specifier.startsWith('.') ? specifier : `node:${specifier}`;
  const builtin = ioModules.find((io) => io.startsWith('node:') && (name === io || name.startsWith(`${io}/`)));
  if (builtin) return builtin;
  return ioModules.find((io) => specifier === io || specifier.startsWith(`${io}/`));
}

/** `src/mta/x.ts` → `mta`; a file directly under src/ (main.ts, roles.ts) is an area of its own. */
function areaOf(path: string): string | undefined {
  const parts = path.split('/');
  if (parts[0] !== 'src') return undefined;
  return parts.length > 2 ? parts[1] : parts[1]?.replace(/\.[^.]+$/, '');
}

type Parser = (path: string) => Parsed | undefined;

/** Parses a file the first time a rule needs it: most files need no parse at all. */
function lazyParse(sources: readonly Source[]): Parser {
  const texts = new Map(sources.map((source) => [source.path, source.text]));
  const cache = new Map<string, Parsed>();
  return (path) => {
    let result = cache.get(path);
    const text = texts.get(path);
    if (!result && text !== undefined) cache.set(path, (result = parse({ path, text })));
    return result;
  };
}

function parse(source: Source): Parsed {
  const kind = /\.[mc]?js$/.test(source.path) ? ts.ScriptKind.JS : ts.ScriptKind.TS;
  const file = ts.createSourceFile(source.path, source.text, ts.ScriptTarget.Latest, true, kind);
  const lineOf = (node: TypeScript.Node) => file.getLineAndCharacterOfPosition(node.getStart(file)).line + 1;
  const imports: ImportRef[] = [];
  const queries: Parsed['queries'] = [];
  const addImport = (node: TypeScript.Node, specifier: string, typeOnly: boolean) => {
    const target = specifier.startsWith('.') ? posix.join(posix.dirname(source.path), specifier) : undefined;
    imports.push({ specifier, line: lineOf(node), typeOnly, ...(target ? { target } : {}) });
    if (!typeOnly && databasePackages.includes(specifier))
      queries.push({ line: lineOf(node), what: `import of ${specifier}` });
  };
  const visit = (node: TypeScript.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      addImport(node, node.moduleSpecifier.text, importIsTypeOnly(node));
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      addImport(node, node.moduleSpecifier.text, node.isTypeOnly);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      const literal = node.argument.literal;
      if (ts.isStringLiteral(literal)) addImport(node, literal.text, true);
    } else if (ts.isCallExpression(node)) {
      const [first] = node.arguments;
      const dynamic = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const required = ts.isIdentifier(node.expression) && node.expression.text === 'require';
      if ((dynamic || required) && first && ts.isStringLiteral(first)) addImport(node, first.text, false);
      const callee = node.expression;
      if (ts.isPropertyAccessExpression(callee) && queryMethods.includes(callee.name.text))
        queries.push({ line: lineOf(callee.name), what: `.${callee.name.text}()` });
    } else if (ts.isTaggedTemplateExpression(node) && ts.isIdentifier(node.tag) && node.tag.text === 'sql') {
      queries.push({ line: lineOf(node), what: 'sql`…` template' });
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return { imports, queries };
}

function importIsTypeOnly(node: TypeScript.ImportDeclaration): boolean {
  const clause = node.importClause;
  if (!clause) return false; // `import './x.ts'` runs the module
  if (clause.isTypeOnly) return true;
  if (clause.name) return false;
  const bindings = clause.namedBindings;
  return (
    bindings !== undefined &&
    ts.isNamedImports(bindings) &&
    bindings.elements.length > 0 &&
    bindings.elements.every((element) => element.isTypeOnly)
  );
}

/** Every source file under `root`/src (TypeScript and JavaScript). */
export function readSources(root: string): Source[] {
  const sources: Source[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.(ts|mts|cts|js|mjs|cjs)$/.test(entry.name))
        sources.push({ path: relative(root, path).split('\\').join('/'), text: readFileSync(path, 'utf8') });
    }
  };
  walk(join(root, 'src'));
  return sources;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const violations = checkArchitecture(readSources(root));
  for (const v of violations) console.error(`${v.file}:${v.line}: ${v.rule}: ${v.message}`);
  if (violations.length > 0) {
    console.error(`check-architecture: ${violations.length} violation(s) (rules in docs/architecture.md)`);
    process.exit(1);
  }
}
