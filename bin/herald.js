#!/usr/bin/env node
// The `herald` command. TypeScript sources run through tsx's loader, so no build step is needed
// after `npm ci`.
import { register } from 'tsx/esm/api';

// `herald … | head`: the reader went away; stop quietly, as other command-line tools do.
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (error) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });

register();
const { runCli } = await import('../src/cli/main.ts');
process.exitCode = await runCli(process.argv);
