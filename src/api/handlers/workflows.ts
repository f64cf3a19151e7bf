import type { Static } from '@sinclair/typebox';
import { runResultView, showWorkflow, workflowLogs } from '../../workflows/inspect.ts';
import type { ApiContext, HandlerInput } from '../route.ts';
import type * as S from '../schemas.ts';

// Technical workflows through the API: the engine of this process (not started: it schedules
// nothing) runs, restarts, pauses and resumes under the same database lease as every other node.

type Name = Static<typeof S.nameParams>;

export async function list({ engine }: ApiContext) {
  return { workflows: await engine.status() };
}

export async function show(
  { herald, engine }: ApiContext,
  { params, query }: HandlerInput<Name, Static<typeof S.runsQuery>, unknown>,
) {
  return showWorkflow(herald.store, engine, params.name, query.runs ?? 10);
}

export function run() {
  return async ({ engine }: ApiContext, { params }: HandlerInput<Name, unknown, unknown>) => {
    engine.registry.require(params.name);
    return runResultView(await engine.runNow(params.name));
  };
}

export async function restart(
  { engine }: ApiContext,
  { params, body }: HandlerInput<Name, unknown, Static<typeof S.restartBody> | undefined>,
) {
  engine.registry.require(params.name);
  return runResultView(await engine.restart(params.name, { fromStep: body?.fromStep }));
}

export function pause(verb: 'pause' | 'resume') {
  return async ({ engine }: ApiContext, { params }: HandlerInput<Name, unknown, unknown>) => {
    engine.registry.require(params.name);
    const { changed } = verb === 'pause' ? await engine.pause(params.name) : await engine.resume(params.name);
    const state = (await engine.status()).find((s) => s.name === params.name)!.state;
    return { name: params.name, changed, state };
  };
}

export async function logs(
  { herald, engine }: ApiContext,
  { params, query }: HandlerInput<Name, Static<typeof S.logsQuery>, unknown>,
) {
  return { logs: await workflowLogs(herald.store, engine, params.name, query.run) };
}
