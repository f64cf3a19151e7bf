import type { Command } from 'commander';
import { diagnose } from '../doctor/checks.ts';
import { doctorSettings } from '../doctor/finding.ts';
import { formatDiagnosis } from '../doctor/format.ts';
import { readDoctorSnapshot } from '../doctor/read-snapshot.ts';
import { getDelivery } from '../store/delivery-queries.ts';
import { CliExit, positiveInteger, printJson, withHerald, type CliContext } from './context.ts';

// `herald doctor`: reads the platform's state once and runs every check (src/doctor/) over it.
// Exit code 0 when no finding is critical, 1 otherwise, so it can gate scripts and monitoring.

export function registerDoctorCommands(program: Command, context: CliContext): void {
  program
    .command('doctor')
    .description('diagnose deliveries, shaping, workflows, tracking, database and mid-sourcing: symptom, cause, fix (exit 1 on a critical finding)')
    .option('--delivery <id>', 'only findings about this delivery (also when it is finished)')
    .option('--json', 'print one JSON object {"checkedAt","checks","findings"}')
    .action(async (options: { delivery?: string; json?: boolean }, command: Command) => {
      const deliveryId = options.delivery === undefined ? undefined : positiveInteger(options.delivery, 'delivery id');
      await withHerald(context, command, async (herald) => {
        if (deliveryId !== undefined) await getDelivery(herald.store, deliveryId);
        const now = herald.clock.now();
        const settings = doctorSettings(herald.config);
        const snapshot = await readDoctorSnapshot({ store: herald.store, config: herald.config, settings, now, ...(deliveryId !== undefined ? { deliveryId } : {}) });
        const diagnosis = diagnose(snapshot, now, settings, deliveryId !== undefined ? { deliveryId } : {});
        const checkedAt = new Date(now).toISOString();
        if (options.json) printJson(context, { checkedAt, checks: diagnosis.checks, findings: diagnosis.findings });
        else for (const line of formatDiagnosis(diagnosis, checkedAt, deliveryId !== undefined ? ` for delivery ${deliveryId}` : '')) context.output.out(line);
        if (diagnosis.findings.some((f) => f.severity === 'critical')) throw new CliExit(1);
      });
    });
}
