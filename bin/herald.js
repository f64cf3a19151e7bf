#!/usr/bin/env node
// The `herald` command. TypeScript sources run through tsx's loader, so no build step is needed
// after `npm ci`.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../src/cli/main.ts');
process.exitCode = await runCli(process.argv);
