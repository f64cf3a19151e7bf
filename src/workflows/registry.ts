import { AppError } from '../common/errors.ts';
import type { WorkflowDefinition } from './types.ts';

// The one list of workflows the engine knows. Built-ins are registered by builtinWorkflows();
// tests and later features pass their own list.

export interface WorkflowRegistry {
  list(): WorkflowDefinition[];
  get(name: string): WorkflowDefinition | undefined;
  require(name: string): WorkflowDefinition;
}

export function createWorkflowRegistry(definitions: WorkflowDefinition[]): WorkflowRegistry {
  const byName = new Map<string, WorkflowDefinition>();
  for (const definition of definitions) {
    if (byName.has(definition.name)) throw new AppError('INTERNAL', `workflow ${definition.name} is registered twice`);
    if (definition.steps.length === 0) throw new AppError('INTERNAL', `workflow ${definition.name} has no steps`);
    byName.set(definition.name, definition);
  }
  return {
    list: () => [...byName.values()],
    get: (name) => byName.get(name),
    require(name) {
      const found = byName.get(name);
      if (!found)
        throw new AppError('NOT_FOUND', `no workflow named "${name}" (known: ${[...byName.keys()].join(', ')})`);
      return found;
    },
  };
}
