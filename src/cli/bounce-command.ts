import { open, stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { AppError } from '../common/errors.ts';
import { compileBounceRules } from '../bounce/classifier.ts';
import { DEFAULT_READ_LIMITS } from '../bounce/mime-reader.ts';
import { parseBounceMessage } from '../bounce/parse-bounce.ts';
import type { ParsedBounce } from '../bounce/parsed-bounce.ts';
import { reportLinesFor, type BounceReportLine } from '../bounce/report-lines.ts';
import { formatPackIssues, layerBouncePacks, loadBouncePack, SHIPPED_BOUNCE_PACK, validateBouncePackText, type PackIssue } from '../bounce/rule-pack.ts';
import { CliExit, printJson, type CliContext } from './context.ts';

// `herald bounce classify` qualifies bounce files with the rule pack; `herald bounce rules check`
// validates a pack. Neither needs the database.

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerBounceCommands(program: Command, context: CliContext): void {
  const bounce = program.command('bounce').description('bounce qualification: classify bounce mails, check bounce rule packs');

  bounce
    .command('classify')
    .description('parse and classify bounce messages (.eml); one line per failed or notified recipient')
    .argument('<files...>', 'raw messages (RFC 5322)')
    .option('--json', 'NDJSON: {"file","recipient","status","replyCode","category","reason","type",...} per line')
    .option('--rules <file>', 'site bounce rule pack layered over the shipped one (repeatable)', collect, [])
    .action(async (files: string[], options: { json?: boolean; rules: string[] }) => {
      const classifier = compileBounceRules(loadBouncePack([SHIPPED_BOUNCE_PACK, ...options.rules]));
      let failed = 0;
      const table: BounceReportLine[] = [];
      for (const path of files) {
        let raw: Uint8Array | { tooLarge: number };
        try {
          raw = await readLimited(path, DEFAULT_READ_LIMITS.maxBytes);
        } catch (error) {
          failed++;
          const message = error instanceof Error ? error.message : String(error);
          if (options.json) printJson(context, { file: path, error: { code: 'NOT_FOUND', message } });
          context.output.err(`error: NOT_FOUND: ${message}`);
          continue;
        }
        const parsed: ParsedBounce = 'tooLarge' in raw
          ? { kind: 'unparseable', format: 'none', recipients: [], original: {}, error: `message of ${raw.tooLarge} bytes is over the ${DEFAULT_READ_LIMITS.maxBytes}-byte limit` }
          : await parseBounceMessage(raw);
        const lines = reportLinesFor(path, parsed, classifier);
        if (options.json) for (const line of lines) printJson(context, line);
        else table.push(...lines);
      }
      if (!options.json) printTable(context, table);
      if (failed > 0) throw new CliExit(1);
    });

  bounce
    .command('rules')
    .description('bounce rule packs')
    .command('check')
    .description('validate bounce rule pack files (each layered over the shipped pack unless --base)')
    .argument('<files...>', 'YAML rule pack files')
    .option('--json', 'print {"ok","version","rules","issues":[{"file","line","message"}]}')
    .option('--base', 'the first file is a complete base pack (do not layer over the shipped one)')
    .action(async (files: string[], options: { json?: boolean; base?: boolean }) => {
      const paths = options.base ? files : [SHIPPED_BOUNCE_PACK, ...files];
      const issues: PackIssue[] = [];
      const layers = [];
      for (const file of paths) {
        let text: string;
        try {
          text = await readText(file);
        } catch (error) {
          issues.push({ file, line: 1, message: `cannot read: ${(error as Error).message}` });
          continue;
        }
        const result = validateBouncePackText(text, file);
        issues.push(...result.issues);
        if (result.layer) layers.push(result.layer);
      }
      const layered = issues.length === 0 ? layerBouncePacks(layers) : undefined;
      issues.push(...(layered?.issues ?? []));
      const pack = layered?.pack;
      if (pack) compileBounceRules(pack);
      if (options.json) printJson(context, { ok: issues.length === 0, version: pack?.version ?? null, rules: pack?.rules.length ?? 0, issues });
      else if (issues.length > 0) context.output.err(formatPackIssues(issues));
      else context.output.out(`ok: bounce rule pack ${pack?.version} (${pack?.rules.length} rules from ${paths.length} file(s))`);
      if (issues.length > 0) throw new CliExit(1);
    });
}

/** Reads a file; anything over `maxBytes` is reported by size without being read. */
async function readLimited(path: string, maxBytes: number): Promise<Uint8Array | { tooLarge: number }> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    throw new AppError('NOT_FOUND', `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
  if (!info.isFile()) throw new AppError('NOT_FOUND', `cannot read ${path}: not a regular file`);
  if (info.size > maxBytes) return { tooLarge: info.size };
  const handle = await open(path, 'r');
  try {
    const buffer = new Uint8Array(info.size);
    const { bytesRead } = await handle.read(buffer, 0, info.size, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

async function readText(path: string): Promise<string> {
  const data = await readLimited(path, 2 * 1024 * 1024);
  if ('tooLarge' in data) throw new AppError('INPUT_TOO_LARGE', `${path} is ${data.tooLarge} bytes, over the 2 MiB limit of a rule pack`);
  return new TextDecoder().decode(data);
}

function printTable(context: CliContext, lines: BounceReportLine[]): void {
  const rows = lines.map((l) => [l.file, l.recipient ?? '-', l.status || '-', l.replyCode || '-', l.category, l.reason, l.type, l.ruleId ?? '-']);
  const header = ['FILE', 'RECIPIENT', 'STATUS', 'CODE', 'CATEGORY', 'REASON', 'TYPE', 'RULE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [header, ...rows]) context.output.out(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
}
