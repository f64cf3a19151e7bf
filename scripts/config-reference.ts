// Writes docs/configuration.md: every key of the configuration with its default, straight from the
// schema, so the reference cannot drift (test/config-docs.test.ts fails when it is out of date).
// Run: node --import tsx scripts/config-reference.ts > docs/configuration.md
import { stringify } from 'yaml';
import { configSchema } from '../src/config/schema.ts';

export function configurationReference(): string {
  const defaults = stringify(configSchema.parse({}), { lineWidth: 0 }).trimEnd();
  return `# Configuration

Herald reads \`herald.yaml\` from the working directory, or the file named by \`--config FILE\` or
\`HERALD_CONFIG\`. Every key is optional and has the default shown below; an unknown key is an error
(\`CONFIG_INVALID: herald.yaml: unknown key mta.maxConnectionPerMx\`), so a typo is never silently
ignored. \`herald config check\` validates a file; \`herald config show [--json]\` prints the effective
configuration with secrets masked.

Environment variables override the file:

| variable | key |
|---|---|
| \`HERALD_DATABASE_URL\` | \`database.url\` (\`sqlite:PATH\` or \`postgres://user@host:5432/db\`) |
| \`HERALD_REDIS_URL\` | \`shaping.redisUrl\` (shared throttle counters across MTA processes) |
| \`HERALD_NODE_ID\` | \`nodeId\` |
| \`HERALD_LOG_LEVEL\` | log level (\`info\` by default) |

What each key means is written next to it in \`src/config/schema.ts\` and explained in the document of
its area: [mta](mta.md), [deliveries](deliveries.md), [audience](audience.md) (\`import\`),
[MX rules](mx-rules.md) (\`shaping\`), [bounce rules](bounce-rules.md) and [quarantine](quarantine.md)
(\`bounce\`, \`quarantine\`, \`inbound\`), [tracking](tracking.md), [workflows](workflows.md),
[deliverability updates](deliverability-update.md), [mid-sourcing](midsourcing.md).

## Every key and its default

\`\`\`yaml
${defaults}
\`\`\`
`;
}

if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(configurationReference());
