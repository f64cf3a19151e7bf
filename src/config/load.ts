import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { AppError } from '../common/errors.ts';
import { validateYaml } from '../common/yaml-source.ts';
import { configSchema, type HeraldConfig } from './schema.ts';

export interface LoadConfigOptions {
  /** Path of a YAML config file; default HERALD_CONFIG, then ./herald.yaml when it exists. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Values applied over the file (used by the demo and tests). */
  overrides?: Record<string, unknown>;
}

/** The configuration file loadConfig reads: --config, then HERALD_CONFIG, then ./herald.yaml when it exists. */
export function configFileInUse(options: LoadConfigOptions = {}): string | undefined {
  const env = options.env ?? process.env;
  return options.file || env.HERALD_CONFIG || (existsSync('herald.yaml') ? 'herald.yaml' : undefined);
}

export function loadConfig(options: LoadConfigOptions = {}): HeraldConfig {
  const env = options.env ?? process.env;
  const file = configFileInUse(options);
  const fromFile = file ? readConfigFile(file) : {};
  const merged = deepMerge(fromFile, options.overrides ?? {});
  if (env.HERALD_DATABASE_URL) merged.database = { ...(merged.database as object), url: env.HERALD_DATABASE_URL };
  if (env.HERALD_NODE_ID) merged.nodeId = env.HERALD_NODE_ID;
  if (env.HERALD_REDIS_URL) merged.shaping = { ...(merged.shaping as object), redisUrl: env.HERALD_REDIS_URL };
  return parseConfig(merged, file ?? 'configuration');
}

export function parseConfig(raw: unknown, source: string): HeraldConfig {
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;
  throw new AppError('CONFIG_INVALID', `${source}: ${formatIssues(result.error)}`);
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new AppError('CONFIG_INVALID', `cannot read config file ${file}: ${unreadableReason(file, cause)}`, {
      cause,
    });
  }
  // The file alone is validated first, so an error names its line (and a typo the key it resembles).
  const checked = validateYaml(text, file, configSchema);
  if (!checked.ok) throw new AppError('CONFIG_INVALID', checked.errors.join('; '));
  const document = parseDocument(text);
  const value = document.toJS() ?? {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new AppError('CONFIG_INVALID', `${file}: the top level must be a mapping of keys`);
  }
  return value as Record<string, unknown>;
}

/** Why a config file cannot be read, in the operator's words (a relative path: where it was looked for). */
function unreadableReason(file: string, cause: unknown): string {
  const code = (cause as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return isAbsolute(file) ? 'no such file' : `no such file (looked for ${resolve(file)})`;
  if (code === 'EISDIR') return 'it is a directory';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied for this user';
  return cause instanceof Error ? cause.message : String(cause);
}

function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.join('.') || '(root)';
      if (issue.code === 'unrecognized_keys')
        return `unknown key ${issue.keys.map((k) => `${path === '(root)' ? '' : `${path}.`}${k}`).join(', ')}`;
      return `${path}: ${issue.message}`;
    })
    .join('; ');
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const existing = out[key];
    if (isPlainObject(existing) && isPlainObject(value)) out[key] = deepMerge(existing, value);
    else out[key] = value;
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
