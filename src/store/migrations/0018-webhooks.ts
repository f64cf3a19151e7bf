import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.ts';
import { addIdColumn, bigint, notNull } from './column-types.ts';

// Event webhooks (issue 14): subscriptions and a durable outbox. Events are written to the outbox by
// triggers, in the transaction of the change they report, whichever code makes it (an operator, the
// MTA finishing a delivery, the delivery-manager or cleanup workflow, mid-sourcing sync): a crash
// can neither lose one nor invent one. One outbox row per active subscription that asked for the kind.
//   delivery.state   a delivery changed state            {deliveryId, name, from, to, at}
//   workflow.failed  a technical workflow run failed     {workflow, runId, failedStep, error, at}

const kinds = {
  deliveryState: 'delivery.state',
  workflowFailed: 'workflow.failed',
};

export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await addIdColumn(db.schema.createTable('webhook_subscriptions'), dialect)
    .addColumn('url', 'text', notNull)
    /** JSON array of event kinds. */
    .addColumn('events', 'text', notNull)
    .addColumn('secret', 'text', notNull)
    .addColumn('state', 'text', notNull)
    .addColumn('consecutive_failures', 'integer', (column) => column.notNull().defaultTo(0))
    .addColumn('last_error', 'text')
    .addColumn('last_success_at', bigint)
    .addColumn('paused_at', bigint)
    .addColumn('created_at', bigint, notNull)
    .execute();

  await addIdColumn(db.schema.createTable('webhook_outbox'), dialect)
    .addColumn('subscription_id', bigint, notNull)
    .addColumn('kind', 'text', notNull)
    .addColumn('payload', 'text', notNull)
    .addColumn('created_at', bigint, notNull)
    .addColumn('attempts', 'integer', (column) => column.notNull().defaultTo(0))
    .addColumn('next_attempt_at', bigint, notNull)
    .addColumn('delivered_at', bigint)
    .execute();
  await db.schema
    .createIndex('webhook_outbox_due')
    .on('webhook_outbox')
    .columns(['subscription_id', 'delivered_at', 'next_attempt_at', 'id'])
    .execute();

  const wants = (kind: string) =>
    dialect === 'postgres'
      ? `s.state = 'active' and position('"${kind}"' in s.events) > 0`
      : `s.state = 'active' and instr(s.events, '"${kind}"') > 0`;
  const json = dialect === 'postgres' ? 'json_build_object' : 'json_object';
  const cast = dialect === 'postgres' ? '::text' : '';
  const deliveryInsert = `insert into webhook_outbox (subscription_id, kind, payload, created_at, attempts, next_attempt_at)
    select s.id, '${kinds.deliveryState}',
      ${json}('deliveryId', NEW.id, 'name', NEW.name, 'from', OLD.state, 'to', NEW.state, 'at', NEW.updated_at)${cast},
      NEW.updated_at, 0, NEW.updated_at
    from webhook_subscriptions s where ${wants(kinds.deliveryState)}`;
  const workflowInsert = `insert into webhook_outbox (subscription_id, kind, payload, created_at, attempts, next_attempt_at)
    select s.id, '${kinds.workflowFailed}',
      ${json}('workflow', NEW.workflow, 'runId', NEW.id, 'failedStep', NEW.failed_step, 'error', NEW.error, 'at', NEW.finished_at)${cast},
      NEW.finished_at, 0, NEW.finished_at
    from webhook_subscriptions s where ${wants(kinds.workflowFailed)}`;

  if (dialect === 'postgres') {
    await sql
      .raw(`create function herald_webhook_delivery_state() returns trigger language plpgsql as $$
        begin ${deliveryInsert}; return null; end $$`)
      .execute(db);
    await sql
      .raw(`create trigger webhook_delivery_state after update of state on deliveries for each row
        when (OLD.state is distinct from NEW.state) execute function herald_webhook_delivery_state()`)
      .execute(db);
    await sql
      .raw(`create function herald_webhook_workflow_failed() returns trigger language plpgsql as $$
        begin ${workflowInsert}; return null; end $$`)
      .execute(db);
    await sql
      .raw(`create trigger webhook_workflow_failed after update of status on workflow_runs for each row
        when (NEW.status = 'failed' and OLD.status is distinct from 'failed') execute function herald_webhook_workflow_failed()`)
      .execute(db);
    return;
  }
  await sql
    .raw(`create trigger webhook_delivery_state after update of state on deliveries
      when OLD.state <> NEW.state begin ${deliveryInsert}; end`)
    .execute(db);
  await sql
    .raw(`create trigger webhook_workflow_failed after update of status on workflow_runs
      when NEW.status = 'failed' and OLD.status <> 'failed' begin ${workflowInsert}; end`)
    .execute(db);
}
