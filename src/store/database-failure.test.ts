import { describe, expect, it } from 'vitest';
import { AppError } from '../common/errors.ts';
import { databaseFailure } from './database-failure.ts';

// Which failures the API answers as the database's (503 DATABASE_*): the errors as the drivers and
// Node raise them, and the same codes from elsewhere, which are not the database's.

const postgres = { dialect: 'postgres' as const, location: 'postgres://herald@db.internal:5433/herald' };
const sqlite = { dialect: 'sqlite' as const, location: '/var/lib/herald/herald.db' };

function socketError(message: string, fields: Record<string, unknown>): Error {
  return Object.assign(new Error(message), fields);
}

describe('databaseFailure', () => {
  it.each([
    ['a lock timeout', new AppError('DATABASE_LOCK_TIMEOUT', 'waited'), postgres, 'DATABASE_LOCK_TIMEOUT'],
    ['SQLite locked', new AppError('DATABASE_BUSY', 'locked'), sqlite, 'DATABASE_BUSY'],
    ['another AppError', new AppError('NOT_FOUND', 'no delivery 3'), postgres, undefined],
    [
      'PostgreSQL refusing',
      socketError('connect ECONNREFUSED 10.0.0.5:5433', { code: 'ECONNREFUSED', syscall: 'connect', port: 5433 }),
      postgres,
      'DATABASE_UNREACHABLE',
    ],
    [
      'its host unknown',
      socketError('getaddrinfo ENOTFOUND db.internal', { code: 'ENOTFOUND', hostname: 'db.internal' }),
      postgres,
      'DATABASE_UNREACHABLE',
    ],
    [
      'a reset as it connects',
      socketError('connect ECONNRESET 10.0.0.5:5433', { code: 'ECONNRESET', syscall: 'connect', port: 5433 }),
      postgres,
      'DATABASE_UNREACHABLE',
    ],
    [
      'a reset under a query',
      socketError('write ECONNRESET', { code: 'ECONNRESET', syscall: 'write' }),
      postgres,
      'DATABASE_UNREACHABLE',
    ],
    ['pg: connection ended', new Error('Connection terminated unexpectedly'), postgres, 'DATABASE_UNREACHABLE'],
    [
      'a server shutting down',
      socketError('terminating connection', { code: '57P01' }),
      postgres,
      'DATABASE_UNREACHABLE',
    ],
    [
      'Redis refusing',
      socketError('connect ECONNREFUSED 127.0.0.1:6379', { code: 'ECONNREFUSED', syscall: 'connect', port: 6379 }),
      postgres,
      undefined,
    ],
    ['an upload its client abandoned', socketError('aborted', { code: 'ECONNRESET' }), postgres, undefined],
    [
      'a refusal on SQLite (not its own)',
      socketError('connect ECONNREFUSED 127.0.0.1:5433', { code: 'ECONNREFUSED', syscall: 'connect', port: 5433 }),
      sqlite,
      undefined,
    ],
    ['a bug', new TypeError("Cannot read properties of undefined (reading 'id')"), postgres, undefined],
  ])('%s', (_name, error, store, expected) => {
    expect(databaseFailure(error, store)).toBe(expected);
  });
});
