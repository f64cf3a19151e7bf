import { sql } from 'kysely';
import type { Store } from '../store/database.ts';
import type { AddressEventRow } from '../store/tables.ts';

// The reads of the dashboard's bounces page: bounce and complaint rates by recipient domain per day
// (from the hourly delivery stats and the address events), and the latest bounces and complaints.

export interface DomainDayRate {
  day: number;
  domain: string;
  sent: number;
  failed: number;
  complaints: number;
}

const dayMs = 86_400_000;

/** Per day since `since` and per domain (the `limit` domains with the most traffic): sent, failed, complaints. */
export async function bounceRatesByDomain(store: Store, since: number, limit: number): Promise<DomainDayRate[]> {
  const traffic = await store.db
    .selectFrom('delivery_stats_hourly')
    .select([
      sql<number>`hour / ${sql.lit(dayMs)}`.as('day'),
      'domain',
      sql<number>`sum(sent)`.as('sent'),
      sql<number>`sum(failed)`.as('failed'),
    ])
    .where('hour', '>=', since)
    .groupBy([sql`1`, 'domain'])
    .execute();
  const domainOf =
    store.dialect === 'postgres'
      ? sql<string>`split_part(email, '@', 2)`
      : sql<string>`substr(email, instr(email, '@') + 1)`;
  const complaints = await store.db
    .selectFrom('address_events')
    .select([sql<number>`at / ${sql.lit(dayMs)}`.as('day'), domainOf.as('domain'), sql<number>`count(*)`.as('n')])
    .where('source', '=', 'complaint')
    .where('at', '>=', since)
    .groupBy([sql`1`, sql`2`])
    .execute();
  const rows = new Map<string, DomainDayRate>();
  const keyOf = (day: number, domain: string) => `${day}|${domain}`;
  for (const t of traffic) {
    const day = Number(t.day) * dayMs;
    rows.set(keyOf(day, t.domain), {
      day,
      domain: t.domain,
      sent: Number(t.sent),
      failed: Number(t.failed),
      complaints: 0,
    });
  }
  for (const c of complaints) {
    const day = Number(c.day) * dayMs;
    const row = rows.get(keyOf(day, c.domain)) ?? { day, domain: c.domain, sent: 0, failed: 0, complaints: 0 };
    row.complaints += Number(c.n);
    rows.set(keyOf(day, c.domain), row);
  }
  const volume = new Map<string, number>();
  for (const row of rows.values()) volume.set(row.domain, (volume.get(row.domain) ?? 0) + row.sent + row.failed);
  const top = new Set(
    [...volume.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([domain]) => domain),
  );
  return [...rows.values()]
    .filter((row) => top.has(row.domain))
    .sort((a, b) => a.domain.localeCompare(b.domain) || b.day - a.day);
}

/** The latest asynchronous bounces and complaints (with their text as received). */
export async function recentBounceEvents(store: Store, limit: number): Promise<AddressEventRow[]> {
  return store.db
    .selectFrom('address_events')
    .selectAll()
    .where('source', 'in', ['bounce', 'complaint'])
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
}
