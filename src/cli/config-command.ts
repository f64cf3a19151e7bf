import type { Command } from 'commander';
import { AppError } from '../common/errors.ts';
import { maskUrl, secretParameterNames } from '../common/mask-url.ts';
import { configFileInUse, loadConfig } from '../config/load.ts';
import { checkConfigSafety, type ConfigWarning } from '../config/safety.ts';
import { bounceDomainResolves } from '../config/safety-facts.ts';
import type { HeraldConfig } from '../config/schema.ts';
import { databaseLocation } from '../store/database.ts';
import { printJson, type CliContext } from './context.ts';
import { builtinWorkflows } from '../workflows/builtins/index.ts';
import { resolveSchedules } from '../workflows/engine.ts';
import { createWorkflowRegistry } from '../workflows/registry.ts';

export function registerConfigCommands(program: Command, context: CliContext): void {
  const config = program.command('config').description('inspect the effective configuration');
  config
    .command('show')
    .description('print the effective configuration (file + environment + defaults), secrets masked')
    .option('--json', 'print as JSON')
    .action((options, command: Command) => {
      const { file, loaded } = load(command);
      const effective = maskSecrets(loaded);
      if (options.json) printJson(context, effective);
      else {
        for (const line of inUseLines(file, loaded)) context.output.out(`# ${line}`);
        context.output.out(JSON.stringify(effective, null, 2));
      }
    });
  config
    .command('check')
    .description(
      'validate the configuration (exit 1 naming the offending key) and name the settings unsafe for real mail (exit 1 with --strict)',
    )
    .option('--strict', 'exit 1 (CONFIG_UNSAFE) when a setting is unsafe for real mail')
    .option('--json', 'print {"ok","configFile","database","warnings":[{"id","key","message","fix"}]}')
    .action(async (options: { strict?: boolean; json?: boolean }, command: Command) => {
      const { file, loaded } = load(command);
      checkSchedules(file, loaded);
      const warnings = checkConfigSafety(loaded, { bounceDomainResolves: await bounceDomainResolves(loaded) });
      const database = databaseLocation(loaded.database.url);
      if (options.json) printJson(context, { ok: warnings.length === 0, configFile: file ?? null, database, warnings });
      else {
        for (const line of inUseLines(file, loaded)) context.output.out(line);
        context.output.out(
          warnings.length === 0
            ? 'configuration is valid and safe for real mail'
            : `configuration is valid, but ${warnings.length} setting${warnings.length === 1 ? ' is' : 's are'} unsafe for real mail:`,
        );
        for (const line of formatWarnings(warnings)) context.output.out(line);
      }
      if (options.strict && warnings.length > 0) throw unsafeError(warnings);
    });
}

/** The workflow overrides and time zone are checked against the workflows that exist, as `herald start` does. */
function checkSchedules(file: string | undefined, loaded: HeraldConfig): void {
  try {
    resolveSchedules(createWorkflowRegistry(builtinWorkflows()), loaded);
  } catch (error) {
    if (error instanceof AppError && error.code === 'CONFIG_INVALID' && file)
      throw new AppError('CONFIG_INVALID', `${file}: ${error.message}`, { cause: error });
    throw error;
  }
}

function load(command: Command): { file: string | undefined; loaded: HeraldConfig } {
  const globals = command.optsWithGlobals() as { config?: string };
  const options = globals.config ? { file: globals.config } : {};
  return { file: configFileInUse(options), loaded: loadConfig(options) };
}

function inUseLines(file: string | undefined, loaded: HeraldConfig): string[] {
  return [
    `config file: ${file ?? 'none (defaults and environment; no --config, HERALD_CONFIG or ./herald.yaml)'}`,
    `database: ${databaseLocation(loaded.database.url)}${process.env.HERALD_DATABASE_URL ? ' (from HERALD_DATABASE_URL)' : ''}`,
  ];
}

/** Two lines per unsafe setting: what and why, then the fix. */
export function formatWarnings(warnings: ConfigWarning[]): string[] {
  return warnings.flatMap((warning) => [`- ${warning.key}: ${warning.message}`, `    fix: ${warning.fix}`]);
}

export function unsafeError(warnings: ConfigWarning[]): AppError {
  return new AppError(
    'CONFIG_UNSAFE',
    `${warnings.length} setting${warnings.length === 1 ? '' : 's'} unsafe for real mail: ${warnings.map((w) => w.key).join(', ')}`,
    { details: { warnings } },
  );
}

const secretKeys = /secret|password|token|privatekey/i;
const secretParams = secretParameterNames;
/** Config keys naming a webhook: its URL path is the credential (Slack, Teams, Discord webhooks). */
const webhookKeys = /webhook/i;
const masked = '***';

/**
 * A copy with secrets masked wherever they hide: values of secret keys, passwords in URLs,
 * credential parameters in query strings (database URLs take `?password=`) and key=value strings,
 * and the path and query of webhook URLs.
 */
export function maskSecrets(config: HeraldConfig): unknown {
  const walk = (value: unknown, key: string): unknown => {
    if (typeof value === 'string') return secretKeys.test(key) ? masked : maskString(value, webhookKeys.test(key));
    if (Array.isArray(value)) return value.map((item) => walk(item, key));
    if (value && typeof value === 'object')
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, k)]));
    return value;
  };
  return walk(config, '');
}

function maskString(value: string, webhook: boolean): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    // Not a URL the platform reads: masked whole rather than guessed at.
    if (!URL.canParse(value)) return masked;
    const url = new URL(maskUrl(value));
    if (webhook) {
      if (url.pathname.length > 1) url.pathname = `/${masked}`;
      if (url.search) url.search = `?${masked}`;
    }
    return url.toString();
  }
  // A keyword connection string ("host=db password=x") or any other name=value text.
  return value.replace(/([A-Za-z0-9_.-]+)=([^\s&;]+)/g, (whole, name: string) =>
    secretParams.test(name) ? `${name}=${masked}` : whole,
  );
}
