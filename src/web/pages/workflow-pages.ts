import { AppError } from '../../common/errors.ts';
import { showWorkflow, workflowLogs } from '../../workflows/inspect.ts';
import type { WorkflowStatus } from '../../workflows/status.ts';
import type { WebRoutes } from '../dashboard.ts';
import type { WebContext } from '../web-route.ts';

// Technical workflows: every workflow with its state, health, last and next run and last error; a
// workflow's steps, run history and the log lines of a run; run / pause / resume / restart from the
// failed step, each behind a confirmation page. The API's engine of this process runs them, under
// the same database lease as every node.

const actions = {
  run: { label: 'Run now', audit: 'runWorkflow' },
  restart: { label: 'Restart from the failed step', audit: 'restartWorkflow' },
  pause: { label: 'Pause', audit: 'pauseWorkflow' },
  resume: { label: 'Resume', audit: 'resumeWorkflow' },
} as const;

type ActionName = keyof typeof actions;

function nameOf(context: WebContext): string {
  const name = (context.request.params as { name?: string }).name ?? '';
  context.engine.registry.require(name);
  return name;
}

export function workflowActions(status: WorkflowStatus): Array<{ name: ActionName; label: string }> {
  const names: ActionName[] = ['run'];
  if (status.lastRun?.status === 'failed') names.push('restart');
  names.push(status.pausedAt === null ? 'pause' : 'resume');
  return names.map((name) => ({ name, label: actions[name].label }));
}

export function registerWorkflowPages(routes: WebRoutes): void {
  routes.get('/workflows', 'viewer', async (context) => {
    const workflows = await context.engine.status();
    return context.render('workflows', {
      title: 'Technical workflows',
      nav: 'workflows',
      workflows: workflows.map((w) => ({ ...w, actions: context.may('operator') ? workflowActions(w) : [] })),
    });
  });

  routes.get('/workflows/:name', 'viewer', async (context) => {
    const name = nameOf(context);
    const query = context.request.query as Record<string, unknown>;
    const runText = typeof query.run === 'string' && query.run !== '' ? query.run : undefined;
    if (runText !== undefined && !/^\d{1,12}$/.test(runText))
      throw new AppError('INPUT_INVALID', 'run: a run id (a whole number)');
    const shown = await showWorkflow(context.herald.store, context.engine, name, 20);
    const logs = await workflowLogs(
      context.herald.store,
      context.engine,
      name,
      runText === undefined ? undefined : Number(runText),
    ).catch((error: unknown) => {
      if (error instanceof AppError && error.code === 'NOT_FOUND' && runText === undefined) return [];
      throw error;
    });
    return context.render('workflow', {
      title: `Workflow ${name}`,
      nav: 'workflows',
      workflow: shown,
      logs,
      logsRun: runText ?? shown.lastRun?.id ?? null,
      actions: context.may('operator') ? workflowActions(shown) : [],
    });
  });

  routes.get('/workflows/:name/confirm/:action', 'operator', async (context) => {
    const name = nameOf(context);
    const action = actionOf(context);
    return context.render('confirm', {
      title: `${actions[action].label}: workflow ${name}?`,
      nav: 'workflows',
      question: `${actions[action].label}: workflow ${name}?${action === 'run' || action === 'restart' ? ' The page answers when the run ends.' : ''}`,
      action: `/ui/workflows/${name}/${action}`,
      label: actions[action].label,
      cancel: `/ui/workflows/${name}`,
    });
  });

  for (const action of Object.keys(actions) as ActionName[]) {
    routes.post(
      `/workflows/:name/${action}`,
      { permission: 'operator', audit: actions[action].audit },
      async (context) => {
        const name = nameOf(context);
        const { engine } = context;
        if (action === 'run') await engine.runNow(name);
        else if (action === 'restart') await engine.restart(name);
        else if (action === 'pause') await engine.pause(name);
        else await engine.resume(name);
        return context.reply.redirect(`/ui/workflows/${name}`, 303);
      },
    );
  }
}

function actionOf(context: WebContext): ActionName {
  const raw = (context.request.params as { action?: string }).action ?? '';
  if (!Object.hasOwn(actions, raw)) throw new AppError('NOT_FOUND', `no workflow action "${raw.slice(0, 40)}"`);
  return raw as ActionName;
}
