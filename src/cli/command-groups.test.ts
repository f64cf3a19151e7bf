import { describe, expect, it } from 'vitest';
import { buildProgram, commandGroupsFor } from './main.ts';
import { defaultCliContext } from './context.ts';

const argv = (...words: string[]) => ['node', 'herald', ...words];

describe('the command groups a command line loads', () => {
  const all = commandGroupsFor(argv());

  it.each([
    [argv('import', 'recipients', 'a.csv', '--list', 'x'), ['import']],
    [argv('-c', 'import', 'doctor', '--json'), ['doctor']],
    [argv('--config', 'h.yaml', '--log-format', 'json', 'start', '--roles', 'mta'), ['start']],
    [argv('--config=h.yaml', 'delivery', 'eta', '3'), ['delivery']],
    [argv('--version'), []],
    [argv('-V'), []],
  ])('%j → %j', (line, groups) => {
    expect(commandGroupsFor(line)).toEqual(groups);
  });

  it('loads every group for help, no command, or a word that is no command', () => {
    expect(all).toContain('import');
    expect(all.length).toBeGreaterThan(15);
    for (const line of [argv('--help'), argv('help', 'import'), argv('imprt'), argv('--json')])
      expect(commandGroupsFor(line)).toEqual(all);
  });

  it('registers exactly the top-level commands of the groups loaded, under their own names', async () => {
    const everything = await buildProgram(defaultCliContext());
    expect(everything.commands.map((command) => command.name())).toEqual(all);
    const one = await buildProgram(defaultCliContext(), ['delivery']);
    expect(one.commands.map((command) => command.name())).toEqual(['delivery']);
    expect(one.commands[0]!.commands.map((command) => command.name())).toEqual(
      expect.arrayContaining(['create', 'prepare', 'logs', 'eta', 'watch', 'priority', 'stats']),
    );
  });
});
