import type { Command } from 'commander';
import { maskUrl } from '../common/logger.ts';
import { loadConfig } from '../config/load.ts';
import type { HeraldConfig } from '../config/schema.ts';
import { printJson, type CliContext } from './context.ts';

export function registerConfigCommands(program: Command, context: CliContext): void {
  const config = program.command('config').description('inspect the effective configuration');
  config
    .command('show')
    .description('print the effective configuration (file + environment + defaults), secrets masked')
    .option('--json', 'print as JSON')
    .action((options, command: Command) => {
      const globals = command.optsWithGlobals() as { config?: string };
      const effective = maskSecrets(loadConfig(globals.config ? { file: globals.config } : {}));
      if (options.json) printJson(context, effective);
      else context.output.out(JSON.stringify(effective, null, 2));
    });
  config
    .command('check')
    .description('validate the configuration; exit 1 with the offending key when it is invalid')
    .option('--json', 'print {"ok":true} as JSON')
    .action((options, command: Command) => {
      const globals = command.optsWithGlobals() as { config?: string };
      loadConfig(globals.config ? { file: globals.config } : {});
      if (options.json) printJson(context, { ok: true });
      else context.output.out('configuration is valid');
    });
}

const secretKeys = /secret|password|token|privatekey/i;

/** A copy with secret values replaced and passwords removed from URLs. */
export function maskSecrets(config: HeraldConfig): unknown {
  const walk = (value: unknown, key: string): unknown => {
    if (typeof value === 'string') {
      if (secretKeys.test(key)) return '***';
      return /^[a-z]+:\/\/[^/]*:[^@/]*@/i.test(value) ? maskUrl(value) : value;
    }
    if (Array.isArray(value)) return value.map((item) => walk(item, key));
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, k)]));
    return value;
  };
  return walk(config, '');
}
