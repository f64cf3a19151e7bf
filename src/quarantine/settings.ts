import type { HeraldConfig } from '../config/schema.ts';
import type { QuarantineSettings } from './types.ts';

export function quarantineSettings(config: HeraldConfig): QuarantineSettings {
  const { softErrorsToQuarantine, errorResetDays, mailboxFullReleaseDays } = config.quarantine;
  return { softErrorsToQuarantine, errorResetDays, mailboxFullReleaseDays };
}
