import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ShapingConfig } from '../config/schema.ts';
import type { Shaper } from './shaper.ts';
import type { BindingLimit } from './snapshot.ts';

// MX rules for `herald demo`: the ISP simulator's hosts end in `.test`, so the shipped pack's
// provider rules never match them, and its generic rule (3000/h) would make a demo last an hour.
// These make throttling visible within seconds: Google's simulated MX gets 2 connections, the
// rate-limiting host a rate just under what it accepts (200/min), the rest is not limited.

export const demoRulesYaml = `# Written by herald demo: MX rules for the ISP simulator.
rules:
  - name: sim-google
    mask: "*.google.test"
    maxConnections: 2
    maxMessagesPerHour: 1000000
  - name: sim-ratelimit
    mask: mx.ratelimit.test
    maxConnections: 2
    # the simulated host answers 421 4.7.0 beyond 200 messages a minute (12,000/h): stay under it
    maxMessagesPerHour: 10800
    burst: 5
  - name: generic
    mask: "*"
    maxConnections: 10
    maxMessagesPerHour: 100000000
backoff:
  - name: rate-limited-421
    reply: "^421 4\\\\.7\\\\.0\\\\b"
    factor: 0.5
    duration: 30s
`;

/** The demo's shaping section: its own pack (in `dataDir`), everything else as configured. */
export function demoShapingConfig(base: ShapingConfig, dataDir: string): ShapingConfig {
  const file = join(dataDir, 'demo-mx-rules.yaml');
  writeFileSync(file, demoRulesYaml);
  return { ...base, rulesFiles: [file], siteRulesDir: '' };
}

export interface BoundRule {
  rule: string;
  limit: Exclude<BindingLimit, 'none'>;
  /** The operator-readable reason the last time it was seen binding. */
  reason: string;
  /** How many observations saw it binding. */
  seen: number;
}

/** Samples the shaper while a delivery runs and remembers which rules held traffic back, and why. */
export function observeBindings(shaper: Shaper, intervalMs = 100): { stop(): Promise<BoundRule[]> } {
  const bound = new Map<string, BoundRule>();
  let sampling: Promise<void> = Promise.resolve();
  const sample = () => {
    sampling = shaper.snapshot().then(
      (snapshot) => {
        for (const rule of snapshot.rules) {
          if (rule.binding === 'none') continue;
          const key = `${rule.rule}|${rule.binding}`;
          const entry = bound.get(key) ?? { rule: rule.rule, limit: rule.binding, reason: rule.bindingReason, seen: 0 };
          entry.seen += 1;
          entry.reason = rule.bindingReason;
          bound.set(key, entry);
        }
      },
      () => undefined,
    );
  };
  const timer = setInterval(sample, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      sample();
      await sampling;
      return [...bound.values()].sort((a, b) => b.seen - a.seen);
    },
  };
}
