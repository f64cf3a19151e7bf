import type { Command } from 'commander';
import { createToken, listTokens, parseRole, revokeToken } from '../api/tokens.ts';
import { printJson, withHerald, type CliContext } from './context.ts';

// `herald tokens create|list|revoke`: the bearer tokens of the HTTP API (docs/api.md). A token is
// printed once, at creation; only its hash is stored.

export function registerTokensCommands(program: Command, context: CliContext): void {
  const tokens = program.command('tokens').description('API tokens: create (shown once), list, revoke');

  tokens
    .command('create')
    .description(
      'create a token: viewer reads, operator acts on deliveries, quarantine and workflows, admin also manages tokens, rules and the database',
    )
    .requiredOption('--role <role>', 'viewer, operator or admin')
    .option('--name <name>', 'what the token is for (shown by tokens list and in the audit)')
    .option('--json', 'print {"token","tokenId","name","role","createdAt",...}')
    .action(async (options: { role: string; name?: string; json?: boolean }, command: Command) => {
      const role = parseRole(options.role);
      await withHerald(context, command, async (herald) => {
        const created = await createToken(herald.store, { role, name: options.name }, herald.clock.now());
        if (options.json) return printJson(context, { token: created.token, ...created.view });
        context.output.out(created.token);
        context.output.err(
          `token ${created.view.tokenId} (${created.view.role}, "${created.view.name}"): store it now, it is not shown again`,
        );
      });
    });

  tokens
    .command('list', { isDefault: true })
    .description('every token (never the secret): id, name, role, created, last used, revoked')
    .option('--json', 'print {"tokens":[...]}')
    .action(async (options: { json?: boolean }, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const views = await listTokens(herald.store);
        if (options.json) return printJson(context, { tokens: views });
        if (views.length === 0) return context.output.out('no API tokens yet: herald tokens create --role viewer');
        for (const t of views)
          context.output.out(
            `${t.tokenId}  ${t.role.padEnd(8)} ${t.revokedAt ? `revoked ${t.revokedAt}` : 'active'}  last used ${t.lastUsedAt ?? 'never'}  ${t.name}`,
          );
      });
    });

  tokens
    .command('revoke <tokenId>')
    .description('revoke a token at once (its next request gets 401)')
    .option('--json', 'print the revoked token')
    .action(async (tokenId: string, options: { json?: boolean }, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const view = await revokeToken(herald.store, tokenId, herald.clock.now());
        if (options.json) printJson(context, view);
        else context.output.out(`token ${view.tokenId} revoked`);
      });
    });
}
