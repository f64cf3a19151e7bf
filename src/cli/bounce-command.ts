import type { Command } from 'commander';
import { AppError } from '../common/errors.ts';
import { compileBounceRules } from '../bounce/classifier.ts';
import type { BounceReportLine } from '../bounce/report-lines.ts';
import {
  formatPackIssues,
  layerBouncePacks,
  loadBouncePack,
  SHIPPED_BOUNCE_PACK,
  validateBouncePackText,
  type PackIssue,
} from '../bounce/rule-pack.ts';
import { ignoreEntry, qualificationEntryView, qualifyEntry } from '../bounce/qualification-actions.ts';
import { inboundCounters, listInboundSamples, listQualificationEntries } from '../bounce/qualification-store.ts';
import { checkRuleExamples } from '../bounce/rule-examples.ts';
import { classifyBounceFile, readLimited } from './bounce-files.ts';
import { registerBounceEvaluateCommand } from './bounce-evaluate-command.ts';
import { CliExit, printJson, withHerald, type CliContext } from './context.ts';
import type { QualificationStatus } from '../store/tables.ts';

// `herald bounce classify` qualifies bounce files with the rule pack; `herald bounce rules check`
// validates a pack (neither needs the database). `pending`, `qualify`, `ignore` and `samples` work on
// the qualification table and the inbound role's samples.

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerBounceCommands(program: Command, context: CliContext): void {
  const bounce = program
    .command('bounce')
    .description('bounce qualification: classify bounce mails, check bounce rule packs, qualify unmatched replies');
  registerQualificationCommands(bounce, context);
  registerBounceEvaluateCommand(bounce, context);

  bounce
    .command('classify')
    .description('parse and classify bounce messages (.eml); one line per failed or notified recipient')
    .argument('<files...>', 'raw messages (RFC 5322)')
    .option('--json', 'NDJSON: {"file","recipient","status","replyCode","category","reason","type",...} per line')
    .option('--rules <file>', 'site bounce rule pack layered over the shipped one (repeatable)', collect, [])
    .action(async (files: string[], options: { json?: boolean; rules: string[] }) => {
      const classifier = compileBounceRules(await loadBouncePack([SHIPPED_BOUNCE_PACK, ...options.rules]));
      let failed = 0;
      const table: BounceReportLine[] = [];
      for (const path of files) {
        let lines: BounceReportLine[];
        try {
          lines = await classifyBounceFile(path, classifier);
        } catch (error) {
          failed++;
          const message = error instanceof Error ? error.message : String(error);
          if (options.json) printJson(context, { file: path, error: { code: 'NOT_FOUND', message } });
          context.output.err(`error: NOT_FOUND: ${message}`);
          continue;
        }
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
        const result = await validateBouncePackText(text, file);
        issues.push(...result.issues);
        if (result.layer) layers.push(result.layer);
      }
      const layered = issues.length === 0 ? layerBouncePacks(layers) : undefined;
      issues.push(...(layered?.issues ?? []));
      const pack = layered?.pack;
      if (pack) issues.push(...checkRuleExamples(pack));
      if (options.json)
        printJson(context, {
          ok: issues.length === 0,
          version: pack?.version ?? null,
          rules: pack?.rules.length ?? 0,
          issues,
        });
      else if (issues.length > 0) context.output.err(formatPackIssues(issues));
      else
        context.output.out(
          `ok: bounce rule pack ${pack?.version} (${pack?.rules.length} rules from ${paths.length} file(s))`,
        );
      if (issues.length > 0) throw new CliExit(1);
    });
}

async function readText(path: string): Promise<string> {
  const data = await readLimited(path, 2 * 1024 * 1024);
  if ('tooLarge' in data)
    throw new AppError('INPUT_TOO_LARGE', `${path} is ${data.tooLarge} bytes, over the 2 MiB limit of a rule pack`);
  return new TextDecoder().decode(data);
}

function printTable(context: CliContext, lines: BounceReportLine[]): void {
  const rows = lines.map((l) => [
    l.file,
    l.recipient ?? '-',
    l.status || '-',
    l.replyCode || '-',
    l.category,
    l.reason,
    l.type,
    l.ruleId ?? '-',
  ]);
  const header = ['FILE', 'RECIPIENT', 'STATUS', 'CODE', 'CATEGORY', 'REASON', 'TYPE', 'RULE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [header, ...rows])
    context.output.out(
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    );
}

const STATUSES = ['to_qualify', 'keep', 'ignore', 'all'];

function registerQualificationCommands(bounce: Command, context: CliContext): void {
  bounce
    .command('pending')
    .description('replies no rule matched, by count (the qualification table)')
    .option('--status <status>', 'to_qualify (default), keep, ignore or all', 'to_qualify')
    .option('--limit <n>', 'entries to show', '50')
    .option('--json', 'NDJSON: {"id","count","status","replyCode","enhancedStatus","pattern","example",...} per line')
    .action(async (options: { status: string; limit: string; json?: boolean }, command: Command) => {
      if (!STATUSES.includes(options.status))
        throw new AppError('INPUT_INVALID', `--status must be one of ${STATUSES.join(', ')}`);
      const limit = positiveInt(options.limit, '--limit');
      await withHerald(context, command, async (herald) => {
        const entries = await listQualificationEntries(herald.store, {
          status: options.status as QualificationStatus | 'all',
          limit,
        });
        if (options.json) for (const entry of entries) printJson(context, entryJson(entry));
        else if (entries.length === 0)
          context.output.out(`no ${options.status === 'all' ? '' : `${options.status} `}entries`);
        else {
          for (const e of entries) {
            context.output.out(
              `#${e.id}  ${String(e.count).padStart(6)}x  ${e.status.padEnd(10)} ${[e.reply_code, e.enhanced_status].filter(Boolean).join(' ') || '-'}  ${e.pattern}`,
            );
            context.output.out(`        e.g. ${e.example.replace(/\s+/g, ' ').slice(0, 160)}`);
          }
          context.output.out('qualify one: herald bounce qualify ID --category CATEGORY [--id RULE_ID]');
        }
      });
    });

  bounce
    .command('qualify')
    .description(
      'write a site rule from a qualification entry (then new classifications use it) and mark the entry keep',
    )
    .argument('<id>', 'entry id (from `herald bounce pending`)')
    .requiredOption('--category <category>', 'bounce category (userunknown, mailboxfull, blocked, ...)')
    .option('--id <ruleId>', 'rule id (default site-<category>-<entry id>)')
    .option('--reason <reason>', "override the category's reason")
    .option('--type <type>', "override the reason's type (hard, soft, ignored)")
    .option('--json', 'print {"id","ruleId","category","file","siteVersion","packVersion","status"}')
    .action(
      async (
        id: string,
        options: { category: string; id?: string; reason?: string; type?: string; json?: boolean },
        command: Command,
      ) => {
        const entryId = positiveInt(id, 'entry id');
        await withHerald(context, command, async (herald) => {
          const result = await qualifyEntry(herald, entryId, {
            category: options.category,
            ...(options.id && { ruleId: options.id }),
            ...(options.reason && { reason: options.reason }),
            ...(options.type && { type: options.type }),
          });
          if (options.json) printJson(context, result);
          else
            context.output.out(
              `rule ${result.ruleId} (${result.category}) written to ${result.file}; pack ${result.packVersion}; running roles reload it within bounce.reloadCheckMs`,
            );
        });
      },
    );

  bounce
    .command('ignore')
    .description('mark a qualification entry ignore (no rule; it stops showing as to_qualify)')
    .argument('<id>', 'entry id')
    .option('--json', 'print {"id","status"}')
    .action(async (id: string, options: { json?: boolean }, command: Command) => {
      const entryId = positiveInt(id, 'entry id');
      await withHerald(context, command, async (herald) => {
        const result = await ignoreEntry(herald, entryId);
        if (options.json) printJson(context, result);
        else context.output.out(`entry ${entryId} ignored`);
      });
    });

  bounce
    .command('counters')
    .description("the inbound role's counters of messages it could not use, by problem")
    .option('--json', 'print one object {"counters":{problem: n}}')
    .action(async (options: { json?: boolean }, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const counters = await inboundCounters(herald.store);
        if (options.json) printJson(context, { counters });
        else for (const [problem, n] of Object.entries(counters)) context.output.out(`${problem.padEnd(20)} ${n}`);
      });
    });

  bounce
    .command('samples')
    .description(
      'messages the inbound role could not use (unparseable, not a bounce, unknown log, too large), newest first, with counters',
    )
    .option('--limit <n>', 'samples to show', '20')
    .option('--raw', 'print the kept start of each message')
    .option(
      '--json',
      'NDJSON {"id","receivedAt","problem","detail","size","truncated","raw",...} per sample (counters: bounce counters)',
    )
    .action(async (options: { limit: string; raw?: boolean; json?: boolean }, command: Command) => {
      const limit = positiveInt(options.limit, '--limit');
      await withHerald(context, command, async (herald) => {
        const counters = await inboundCounters(herald.store);
        const samples = await listInboundSamples(herald.store, limit);
        if (options.json) {
          for (const s of samples)
            printJson(context, {
              id: s.id,
              receivedAt: new Date(s.received_at).toISOString(),
              problem: s.problem,
              detail: s.detail,
              remoteAddress: s.remote_address,
              mailFrom: s.mail_from,
              rcptTo: s.rcpt_to,
              size: s.size,
              truncated: s.truncated === 1,
              raw: s.raw,
            });
          return;
        }
        context.output.out(
          `counters: ${
            Object.entries(counters)
              .map(([k, v]) => `${k}=${v}`)
              .join(' ') || '(none)'
          }`,
        );
        for (const s of samples) {
          context.output.out(
            `#${s.id} ${new Date(s.received_at).toISOString()} ${s.problem} ${s.size} bytes from ${s.remote_address ?? '?'} to ${s.rcpt_to ?? '?'}: ${s.detail}`,
          );
          if (options.raw) context.output.out(s.raw);
        }
      });
    });
}

const entryJson = qualificationEntryView;

function positiveInt(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new AppError('INPUT_INVALID', `${what} must be a positive integer, not "${value}"`);
  return n;
}
