import { z } from 'zod';

// The `deliverability` section of the configuration (plugged into src/config/schema.ts): where the
// `deliverability-update` workflow loads MX-rule and bounce-rule packs from. Its schedule is the
// workflow's (workflows.overrides.deliverability-update.schedule). docs/deliverability-update.md.

export const deliverabilitySchema = z
  .object({
    /** A directory holding mx.yaml and/or bounce.yaml, or an https:// URL of a manifest.json (or of the directory serving one); '' = not configured. */
    source: z.string().default(''),
    /** One HTTP request (manifest or pack file), connection to last byte. */
    fetchTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
    /** Largest manifest or pack file accepted; larger ones are refused before they are stored. */
    maxFileBytes: z
      .number()
      .int()
      .min(1_024)
      .max(16 * 1024 * 1024)
      .default(2 * 1024 * 1024),
    /** Versions kept per kind (the active one and the one it replaced are always kept). */
    keepVersions: z.number().int().min(2).max(10_000).default(50),
  })
  .strict();

export type DeliverabilityConfig = z.infer<typeof deliverabilitySchema>;
