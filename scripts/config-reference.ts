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
(\`CONFIG_INVALID: herald.yaml:3: unknown key mta.maxConnectionPerMx (did you mean maxConnectionsPerMx?)\`), so a typo is never silently
ignored. An interval or timeout (\`…Ms\`, \`…Seconds\`, \`…Minutes\` that a timer or PostgreSQL uses) is at most
about 24 days (2^31 − 1 ms): past it a Node.js timer fires every millisecond and PostgreSQL refuses the setting. \`herald config check\` validates a file and names the settings that are valid but unsafe
for real mail (the defaults are made for the demo: tracking links on 127.0.0.1, bounce domain
\`bounces.herald.invalid\`, EHLO \`localhost\`, no DKIM; the list is in [doctor](doctor.md#configuration)),
each with its fix; \`--strict\` makes them an error (\`CONFIG_UNSAFE\`, exit 1), as \`herald start --strict\`
does (without it, \`herald start\` prints them as warnings). \`herald config show [--json]\` prints the
effective configuration with secrets masked. Both print the configuration file and the database in use.

**Which database.** \`database.url\` (default \`sqlite:./data/herald.db\`, relative to the working
directory) or \`HERALD_DATABASE_URL\`. Only the commands that put data in (\`herald start\`, \`demo\`,
\`import recipients\`, \`delivery create\`) create a missing SQLite database, and only the default's
\`./data\` folder is created; every other command fails with \`DATABASE_NOT_FOUND\` naming the path it
looked for, so running a command from another directory never leaves an empty database behind.
A database that cannot be opened says why: \`DATABASE_UNREACHABLE\` (host:port; also a PostgreSQL that
accepts the connection and does not answer within \`database.connectTimeoutMs\`), \`DATABASE_NOT_FOUND\`,
\`DATABASE_AUTH_FAILED\`, \`DATABASE_NOT_WRITABLE\` ([error codes](error-codes.md)). "Not found" errors
name the database they looked in.

Environment variables override the file:

| variable | key |
|---|---|
| \`HERALD_DATABASE_URL\` | \`database.url\` (\`sqlite:PATH\` or \`postgres://user@host:5432/db\`) |
| \`HERALD_REDIS_URL\` | \`shaping.redisUrl\` (shared throttle counters across MTA processes) |
| \`HERALD_NODE_ID\` | \`nodeId\` |
| \`HERALD_LOG_LEVEL\` | log level: \`trace\`, \`debug\`, \`info\` (default), \`warn\`, \`error\`, \`fatal\` or \`silent\`; another value is refused (\`CONFIG_INVALID\` naming it) |

What each key means is written next to it in \`src/config/schema.ts\` and explained in the document of
its area: [mta](mta.md), [deliveries](deliveries.md), [audience](audience.md) (\`import\`),
[MX rules](mx-rules.md) (\`shaping\`), [bounce rules](bounce-rules.md) and [quarantine](quarantine.md)
(\`bounce\`, \`quarantine\`, \`inbound\`), [tracking](tracking.md), [workflows](workflows.md),
[deliverability updates](deliverability-update.md), [mid-sourcing](midsourcing.md), [HTTP API](api.md) (\`api\`), [metrics](metrics.md) (\`metrics\`), [webhooks](webhooks.md) (\`webhooks\`).

## Every key and its default

\`\`\`yaml
${defaults}
\`\`\`
`;
}

if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(configurationReference());
