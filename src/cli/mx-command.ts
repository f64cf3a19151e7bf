import type { Command } from 'commander';
import { loadConfig } from '../config/load.ts';
import { createDnsClient } from '../mta/mx-resolver.ts';
import { matchMxHost, readMxStats } from '../shaping/mx-view.ts';
import { formatStatsView } from '../shaping/stats-view.ts';
import { AppError } from '../common/errors.ts';
import { positiveInteger, printJson, withHerald, type CliContext } from './context.ts';

// `herald mx stats`: what each MTA node's shaping is doing right now (from the snapshots the
// nodes write to the database, plus live connection counts from Redis when it is configured).
// `herald mx match HOST`: which rule an MX host falls under, and its limits.

export function registerMxCommands(program: Command, context: CliContext): void {
  const mx = program.command('mx').description('MX rules and traffic shaping: live stats, rule matching');

  mx.command('stats')
    .description(
      'per rule and per path: load against each limit, the binding limit, messages waiting, backoffs and suspensions',
    )
    .option('--max-age <seconds>', 'ignore snapshots older than this (stopped nodes)', '300')
    .option('--json', 'print the merged view as one JSON object')
    .action(async (options: { json?: boolean; maxAge: string }, command: Command) => {
      // Number("5m") was NaN: no snapshot read, and "no MTA has run recently" while nodes sent.
      const maxAge = positiveInteger(options.maxAge, '--max-age');
      await withHerald(context, command, async (herald) => {
        const view = await readMxStats(herald, maxAge);
        if (options.json) printJson(context, view);
        else for (const line of formatStatsView(view)) context.output.out(line);
      });
    });

  mx.command('match <host>')
    .description(
      'show which MX rule applies to an MX host name (not the email domain: given a domain, its MX hosts are looked up) and its limits',
    )
    .option('--public-id <id>', 'public id of the source address', '0')
    .option('--json', 'print the rule as JSON (given a domain: one line per MX host, each with "domain")')
    .action(async (host: string, options: { json?: boolean; publicId: string }, command: Command) => {
      const publicId = Number(options.publicId);
      if (!Number.isSafeInteger(publicId) || publicId < 0)
        throw new AppError(
          'INPUT_INVALID',
          `--public-id must be a whole number, 0 or more (got "${options.publicId}")`,
        );
      const globals = command.optsWithGlobals() as { config?: string };
      const config = loadConfig(globals.config ? { file: globals.config } : {});
      // Rules match MX host names. A name with MX records of its own is a mail domain: match its MX hosts.
      const mxHosts = await mxHostsOf(host, config.mta.resolverServers);
      if (mxHosts.length > 0 && !options.json)
        context.output.out(
          `${host} is a mail domain, not an MX host: rules match the MX host names its MX records give (${mxHosts.join(', ')})`,
        );
      for (const name of mxHosts.length > 0 ? mxHosts : [host]) {
        const out = {
          ...(await matchMxHost(config, name, publicId)),
          ...(mxHosts.length > 0 ? { domain: host } : {}),
        };
        if (options.json) printJson(context, out);
        else {
          context.output.out(
            `${name} → rule "${out.rule}" (${out.source.file}:${out.source.line}, masks ${out.masks.join(', ')}, public ids ${out.publicIds})`,
          );
          context.output.out(
            `  maxConnections ${out.maxConnections} per path, maxMessagesPerHour ${out.maxMessagesPerHour} ${out.shared ? 'shared by every source IP' : 'per public id'}, maxMessagesPerConnection ${out.maxMessagesPerConnection}, tls ${out.tls}`,
          );
        }
      }
    });
}

/** The MX hosts a name publishes (other than itself); none when it has no MX record or DNS does not answer. */
async function mxHostsOf(name: string, resolverServers: readonly string[]): Promise<string[]> {
  try {
    const answers = await createDnsClient(resolverServers, 2_000).resolveMx(name);
    return answers
      .sort((a, b) => a.priority - b.priority)
      .map((answer) => answer.exchange.toLowerCase().replace(/\.$/, ''))
      .filter((exchange) => exchange !== '' && exchange !== name.toLowerCase());
  } catch {
    return [];
  }
}
