import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

// Per-message webhook events (issue 14 item 6), written like those of 0018: by triggers, in the
// transaction of the fact they report, one outbox row per active subscription asking for the kind.
//   message.sent          a delivery log became sent                      (delivery_logs)
//   message.failed        a delivery log failed before being sent: SMTP refusal, expiry, …
//   message.bounced       an asynchronous bounce was qualified            (address_events, source bounce)
//   message.complained    a feedback report (complaint) about a log       (address_events, source complaint)
//   message.unsubscribed  an unsubscribe (link, one-click POST, mailto:)  (address_events, source unsubscribe)
//   message.opened        an open recorded by the tracking server         (tracking_events, kind open)
//   message.clicked       a click recorded by the tracking server         (tracking_events, kind click)
// A log that fails after it was sent is reported by its bounce (message.bounced), not as failed.
// Cost when nobody subscribes: SQLite evaluates the trigger's WHEN over the new row, then an insert
// selecting from an empty (small) subscription table; PostgreSQL calls the function only for rows
// passing the WHEN (a status change to sent or failed, a bounce, a tracking event).

interface EventTrigger {
  name: string;
  table: string;
  timing: string;
  /** Condition on NEW/OLD columns only (PostgreSQL forbids subqueries in WHEN). */
  when: string;
  kind: string;
  /** json_object pairs ('key', expression, …), in SQLite's and PostgreSQL's common syntax. */
  pairs: string;
  at: string;
}

const logPairs = `'deliveryId', NEW.delivery_id, 'logId', NEW.id, 'recipientId', NEW.recipient_id, 'email', NEW.email`;
const addressPairs = `'deliveryId', NEW.delivery_id, 'logId', NEW.delivery_log_id, 'email', NEW.email`;
const trackingPairs = `'deliveryId', NEW.delivery_id, 'logId', NEW.log_id,
  'email', (select l.email from delivery_logs l where l.id = NEW.log_id)`;

const triggers: EventTrigger[] = [
  {
    name: 'webhook_message_sent',
    table: 'delivery_logs',
    timing: 'after update of status',
    when: `NEW.status = 'sent' and OLD.status <> 'sent'`,
    kind: 'message.sent',
    pairs: `${logPairs}, 'mxHost', NEW.mx_host, 'replyCode', NEW.last_reply_code, 'attempts', NEW.attempts, 'at', NEW.updated_at`,
    at: 'NEW.updated_at',
  },
  {
    name: 'webhook_message_failed',
    table: 'delivery_logs',
    timing: 'after update of status',
    when: `NEW.status = 'failed' and OLD.status not in ('failed', 'sent')`,
    kind: 'message.failed',
    pairs: `${logPairs}, 'type', NEW.failure_type, 'reason', NEW.failure_reason, 'category', NEW.failure_category,
      'replyCode', NEW.last_reply_code, 'enhancedStatus', NEW.last_enhanced_status, 'reply', NEW.last_reply_text,
      'mxHost', NEW.mx_host, 'attempts', NEW.attempts, 'at', NEW.updated_at`,
    at: 'NEW.updated_at',
  },
  {
    name: 'webhook_message_bounced',
    table: 'address_events',
    timing: 'after insert',
    // Auto-replies (category vacation) come in as bounce mails but are not bounces.
    when: `NEW.source = 'bounce' and coalesce(NEW.category, '') <> 'vacation'`,
    kind: 'message.bounced',
    pairs: `${addressPairs}, 'type', NEW.type, 'reason', NEW.reason, 'category', NEW.category, 'reply', NEW.reply_text, 'at', NEW.at`,
    at: 'NEW.at',
  },
  {
    name: 'webhook_message_complained',
    table: 'address_events',
    timing: 'after insert',
    when: `NEW.source = 'complaint'`,
    kind: 'message.complained',
    pairs: `${addressPairs}, 'note', NEW.note, 'at', NEW.at`,
    at: 'NEW.at',
  },
  {
    name: 'webhook_message_unsubscribed',
    table: 'address_events',
    timing: 'after insert',
    when: `NEW.source = 'unsubscribe'`,
    kind: 'message.unsubscribed',
    pairs: `${addressPairs}, 'note', NEW.note, 'at', NEW.at`,
    at: 'NEW.at',
  },
  {
    name: 'webhook_message_opened',
    table: 'tracking_events',
    timing: 'after insert',
    when: `NEW.kind = 'open'`,
    kind: 'message.opened',
    pairs: `${trackingPairs}, 'flags', NEW.flags, 'userAgent', NEW.user_agent, 'at', NEW.at`,
    at: 'NEW.at',
  },
  {
    name: 'webhook_message_clicked',
    table: 'tracking_events',
    timing: 'after insert',
    when: `NEW.kind = 'click'`,
    kind: 'message.clicked',
    pairs: `${trackingPairs}, 'linkIndex', NEW.link_index, 'flags', NEW.flags, 'userAgent', NEW.user_agent, 'at', NEW.at`,
    at: 'NEW.at',
  },
];

export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const postgres = dialect === 'postgres';
  for (const trigger of triggers) {
    const wants = postgres
      ? `s.state = 'active' and position('"${trigger.kind}"' in s.events) > 0`
      : `s.state = 'active' and instr(s.events, '"${trigger.kind}"') > 0`;
    const payload = postgres ? `json_build_object(${trigger.pairs})::text` : `json_object(${trigger.pairs})`;
    const insert = `insert into webhook_outbox (subscription_id, kind, payload, created_at, attempts, next_attempt_at)
      select s.id, '${trigger.kind}', ${payload}, ${trigger.at}, 0, ${trigger.at}
      from webhook_subscriptions s where ${wants}`;
    if (postgres) {
      await sql
        .raw(`create function herald_${trigger.name}() returns trigger language plpgsql as $$
          begin ${insert}; return null; end $$`)
        .execute(db);
      await sql
        .raw(`create trigger ${trigger.name} ${trigger.timing} on ${trigger.table} for each row
          when (${trigger.when}) execute function herald_${trigger.name}()`)
        .execute(db);
    } else {
      await sql
        .raw(`create trigger ${trigger.name} ${trigger.timing} on ${trigger.table}
          when ${trigger.when} begin ${insert}; end`)
        .execute(db);
    }
  }
}
