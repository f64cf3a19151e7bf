import type { Command } from 'commander';
import { AppError } from '../common/errors.ts';
import { quarantineSettings } from '../quarantine/settings.ts';
import type { AddressState } from '../quarantine/types.ts';
import { countAddressesByState, listAddresses } from '../quarantine/quarantine-store.ts';
import {
  addressView,
  listAddress,
  parseReleaseSince,
  RELEASE_SINCE_FORMS,
  releaseAddress,
  releaseDomain,
  showAddress,
  timelineLimit,
} from '../quarantine/operator.ts';
import { printJson, withHerald, type CliContext } from './context.ts';
import { sweepAddresses } from '../quarantine/address-events.ts';

// `herald quarantine`: list addresses by state, show one address's timeline, release in bulk after
// an ISP outage misfired, allowlist/denylist by hand, run the sweep.

const STATES: AddressState[] = ['valid', 'with_errors', 'quarantined', 'denylisted', 'allowlisted'];

/** Addresses read per query by `quarantine list`. */
const listPageSize = 1_000;

export function registerQuarantineCommands(program: Command, context: CliContext): void {
  const quarantine = program.command('quarantine').description('address quarantine: states, timelines, releases');

  quarantine
    .command('list', { isDefault: true })
    .description('addresses that are not plain valid, most recently changed first')
    .option('--state <state>', `one of ${STATES.join(', ')} (default: all but valid)`)
    .option('--domain <domain>', 'only addresses of this domain')
    .option('--limit <n>', 'rows to show', '100')
    .option(
      '--json',
      'NDJSON {"email","state","errorCount","lastErrorAt","reason","updatedAt"} per address (counts: quarantine counts)',
    )
    .action(async (options: { state?: string; domain?: string; limit: string; json?: boolean }, command: Command) => {
      if (options.state !== undefined && !STATES.includes(options.state as AddressState))
        throw new AppError('INPUT_INVALID', `--state must be one of ${STATES.join(', ')}`);
      const limit = positiveInt(options.limit, '--limit');
      await withHerald(context, command, async (herald) => {
        const filter = {
          ...(options.state && { states: [options.state as AddressState] }),
          ...(options.domain && { domain: options.domain }),
        };
        if (!options.json) {
          const counts = await countAddressesByState(herald.store);
          context.output.out(
            `addresses: ${
              Object.entries(counts)
                .map(([k, v]) => `${k}=${v}`)
                .join(' ') || '(none)'
            }`,
          );
        }
        // Page by page, printed as read: `--limit 10000000 --json` (an export) held every row in memory.
        let printed = 0;
        let after: { updatedAt: number; email: string } | undefined;
        while (printed < limit) {
          const asked = Math.min(listPageSize, limit - printed);
          const rows = await listAddresses(herald.store, { ...filter, limit: asked, after });
          if (!options.json && printed === 0 && rows.length > 0)
            context.output.out(
              `${'ADDRESS'.padEnd(40)} ${'STATE'.padEnd(12)} ${'ERRORS'.padStart(6)} ${'REASON'.padEnd(16)} LAST ERROR`,
            );
          for (const row of rows) {
            if (options.json) printJson(context, addressJson(row));
            else
              context.output.out(
                `${row.email.padEnd(40)} ${row.state.padEnd(12)} ${String(row.errorCount).padStart(6)} ${(row.reason ?? '-').padEnd(16)} ${iso(row.lastErrorAt) ?? '-'}`,
              );
          }
          printed += rows.length;
          const last = rows.at(-1);
          if (!last || rows.length < asked) break;
          after = { updatedAt: last.updatedAt, email: last.email };
        }
        if (!options.json && printed === 0) context.output.out('no address matches');
      });
    });

  quarantine
    .command('counts')
    .description('how many addresses are in each state')
    .option('--json', 'print one object {"counts":{state: n}}')
    .action(async (options: { json?: boolean }, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const counts = await countAddressesByState(herald.store);
        if (options.json) printJson(context, { counts });
        else for (const [state, n] of Object.entries(counts)) context.output.out(`${state.padEnd(12)} ${n}`);
      });
    });

  quarantine
    .command('show')
    .description("an address's state and timeline (which delivery, which reply, which rule and pack version)")
    .argument('<address>', 'email address')
    .option('--json', 'print {"address":{...},"timeline":[...]}')
    .action(async (address: string, options: { json?: boolean }, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const shown = await showAddress(herald.store, address);
        const { address: state, known, timeline: views, events: timeline, olderEventsNotShown } = shown;
        if (options.json) {
          printJson(context, { address: state, known, timeline: views, olderEventsNotShown });
          return;
        }
        if (!known) {
          context.output.out(
            `${state.email}: unknown to the quarantine (no state and no event in database ${herald.store.location}): it is sent to as valid`,
          );
          return;
        }
        context.output.out(
          `${state.email}: ${state.state}, ${state.errorCount} counted soft error(s)${state.reason ? `, reason ${state.reason}` : ''}`,
        );
        for (const e of timeline) {
          const where = e.delivery_id ? ` delivery ${e.delivery_id} log ${e.delivery_log_id}` : '';
          const rule = e.rule_id ? ` rule ${e.rule_id}@${e.pack_version ?? '?'}` : '';
          context.output.out(
            `${new Date(e.at).toISOString()} ${e.source.padEnd(11)} ${e.state_before}→${e.state_after} ${e.type ?? ''} ${e.category ?? ''}${rule}${where}${e.counted ? ' (counted)' : ''}`,
          );
          if (e.reply_text) context.output.out(`    ${e.reply_text.slice(0, 200)}`);
          if (e.note) context.output.out(`    note: ${e.note}`);
        }
        if (olderEventsNotShown)
          context.output.out(`(the ${timelineLimit} most recent events; older ones are not shown)`);
      });
    });

  quarantine
    .command('release')
    .description(
      'back to valid: one address, or a whole domain after an ISP outage (quarantined/with_errors since DATE)',
    )
    .argument('[address]', 'one address')
    .option('--domain <domain>', 'release every address of this domain whose last error is at or after --since')
    .option('--since <date>', 'ISO date or date-time, e.g. 2026-04-10 or 2026-04-10T06:00Z')
    .option('--note <text>', 'why (kept on each timeline)')
    .option('--dry-run', 'count only')
    .option('--json', 'print {"released","dryRun","sample":[...]}')
    .action(
      async (
        address: string | undefined,
        options: { domain?: string; since?: string; note?: string; dryRun?: boolean; json?: boolean },
        command: Command,
      ) => {
        if (!address && !(options.domain && options.since))
          throw new AppError('INPUT_INVALID', 'give an ADDRESS, or --domain D --since DATE');
        if (address && options.domain) throw new AppError('INPUT_INVALID', 'give an ADDRESS or --domain, not both');
        // Silently ignored, it released the address whatever its last error's date.
        if (address && options.since)
          throw new AppError('INPUT_INVALID', '--since goes with --domain: one ADDRESS is released whatever its date');
        await withHerald(context, command, async (herald) => {
          const now = herald.clock.now();
          const result = address
            ? await releaseAddress(
                herald.store,
                herald.config,
                { email: address, note: options.note, dryRun: options.dryRun ?? false },
                now,
              )
            : await releaseDomain(
                herald.store,
                herald.config,
                {
                  domain: options.domain!,
                  since: parseDate(options.since!),
                  sinceText: options.since!,
                  note: options.note,
                  dryRun: options.dryRun ?? false,
                },
                now,
              );
          if (options.json)
            printJson(context, { released: result.released, dryRun: options.dryRun ?? false, sample: result.emails });
          else
            context.output.out(
              `${options.dryRun ? 'would release' : 'released'} ${result.released} address(es)${result.emails.length ? `: ${result.emails.slice(0, 5).join(', ')}${result.released > 5 ? ', ...' : ''}` : ''}`,
            );
        });
      },
    );

  for (const [name, action, what] of [
    ['allowlist', 'allowlist', 'never quarantined again (complaints and unsubscribes still denylist it)'],
    ['denylist', 'denylist', 'never sent to again until released'],
  ] as const) {
    quarantine
      .command(name)
      .description(`${name} an address: ${what}`)
      .argument('<address>', 'email address')
      .option('--note <text>', 'why (kept on the timeline)')
      .option('--json', 'print the address row')
      .action(async (address: string, options: { note?: string; json?: boolean }, command: Command) => {
        await withHerald(context, command, async (herald) => {
          const row = await listAddress(
            herald.store,
            herald.config,
            { email: address, action, note: options.note },
            herald.clock.now(),
          );
          if (options.json) printJson(context, addressJson(row));
          else context.output.out(`${row.email}: ${row.state}`);
        });
      });
  }

  quarantine
    .command('sweep')
    .description(
      'release mailbox_full quarantines and reset quiet counters now (the mta role does it every quarantine.sweepIntervalMinutes)',
    )
    .option('--json', 'print {"changed"}')
    .action(async (options: { json?: boolean }, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const changed = await sweepAddresses(herald.store, quarantineSettings(herald.config), herald.clock.now());
        if (options.json) printJson(context, { changed });
        else context.output.out(`${changed} address(es) released or reset`);
      });
    });
}

const addressJson = addressView;

function iso(at: number | null): string | null {
  return at === null ? null : new Date(at).toISOString();
}

function parseDate(value: string): number {
  const at = parseReleaseSince(value);
  if (at === undefined) throw new AppError('INPUT_INVALID', `--since: "${value}" is not ${RELEASE_SINCE_FORMS}`);
  return at;
}

function positiveInt(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new AppError('INPUT_INVALID', `${what} must be a positive integer, not "${value}"`);
  return n;
}
