// Durations in rule packs and configuration: a number of seconds, or a string with a unit
// (`500ms`, `30s`, `5m`, `3h`), because "timeout: 600" alone leaves the reader guessing.

const units: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

export function parseDuration(value: number | string): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? Math.round(value * 1_000) : undefined;
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/.exec(value.trim());
  if (!match) return undefined;
  const ms = Math.round(Number(match[1]) * units[match[2]!]!);
  return ms > 0 ? ms : undefined;
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}
