import type { Command } from 'commander';
import { formatDiagnosis } from '../doctor/format.ts';
import { runDoctor } from '../doctor/run-doctor.ts';
import { getDelivery } from '../delivery/delivery-store.ts';
import { knownRoles, parseRoles } from '../roles.ts';
import { CliExit, positiveInteger, printJson, withHerald, type CliContext } from './context.ts';

// `herald doctor`: reads the platform's state once and runs every check (src/doctor/) over it.
// Exit code 0 when no finding is critical, 1 otherwise, so it can gate scripts and monitoring.

export function registerDoctorCommands(program: Command, context: CliContext): void {
  program
    .command('doctor')
    .description(
      'diagnose deliveries, shaping, workflows, tracking, database and mid-sourcing: symptom, cause, fix (exit 1 on a critical finding)',
    )
    .option('--delivery <id>', 'only findings about this delivery (also when it is finished)')
    .option(
      '--roles <list>',
      `the roles one herald start runs here (${knownRoles().join(', ')}), for the open-files check; default all`,
    )
    .option('--json', 'print one JSON object {"checkedAt","checks","findings"}')
    .action(async (options: { delivery?: string; roles?: string; json?: boolean }, command: Command) => {
      const deliveryId = options.delivery === undefined ? undefined : positiveInteger(options.delivery, 'delivery id');
      const roles = options.roles === undefined || options.roles === 'all' ? undefined : parseRoles(options.roles);
      await withHerald(context, command, async (herald) => {
        if (deliveryId !== undefined) await getDelivery(herald.store, deliveryId);
        const diagnosis = await runDoctor(herald, {
          ...(deliveryId !== undefined && { deliveryId }),
          ...(roles && { roles }),
        });
        if (options.json)
          printJson(context, {
            checkedAt: diagnosis.checkedAt,
            checks: diagnosis.checks,
            findings: diagnosis.findings,
            deliveriesNotChecked: diagnosis.deliveriesNotChecked,
          });
        else
          for (const line of formatDiagnosis(
            diagnosis,
            diagnosis.checkedAt,
            deliveryId !== undefined ? ` for delivery ${deliveryId}` : '',
            diagnosis.deliveriesNotChecked,
          ))
            context.output.out(line);
        if (diagnosis.findings.some((f) => f.severity === 'critical')) throw new CliExit(1);
      });
    });
}
